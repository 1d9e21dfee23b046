//! The plan of a batch: every queued command decided in order on the committed state, with the
//! rows to append, and how the held state moves on once they are written. Pure: no IO, no
//! clock, no locks; the writer does the appending and the answering.
//!
//! A command is decided on the held state itself until one is accepted. A later command must see
//! the batch's earlier events, so it is decided on the twin: a second copy of the committed
//! state, made once per aggregate and then kept in step (every written batch is applied to
//! both). The held state takes a batch's events only in [`Plan::commit`], after the append has
//! succeeded; a plan dropped instead (the append failed) takes the twin with it, and the held
//! state is still the committed one.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use uuid::Uuid;

use super::outcome::{Committed, Outcome, StoredResult};
use crate::domain::{DomainAggregate, DomainCommand};
use crate::error::Error;
use crate::log::LogPosition;
use crate::store::event_store::{Loaded, LogRow, NewEvent};
use crate::store::metadata::CommandMetadata;

/// One command to decide, with its metadata.
pub(super) struct Request<A: Aggregate> {
    pub command: A::Command,
    pub meta: CommandMetadata,
}

impl<A: Aggregate> AsRef<Request<A>> for Request<A> {
    fn as_ref(&self) -> &Request<A> {
        self
    }
}

/// A copy of the committed state as it was at `version`; of use only while that is still the
/// committed version (anything that moves the committed state on without it leaves it behind).
pub(super) struct Twin<A> {
    pub version: u64,
    pub aggregate: A,
}

/// What was decided for one command of a batch.
pub(super) enum Decision<A: Aggregate> {
    Accepted {
        version: u64,
        events: Vec<A::Event>,
        /// Which of the plan's events (and so of the append's positions) are this command's.
        range: std::ops::Range<usize>,
    },
    Rejected(A::Error),
    /// The same command id as an earlier command of this batch.
    SameAs(usize),
    /// The same command id as an earlier command of this batch, with another fingerprint.
    Reused(usize),
}

/// A decided batch, not yet written.
pub(super) struct Plan<A: Aggregate> {
    /// The version the batch was decided on; the append is conditional on it.
    pub base_version: u64,
    /// The version after the batch (`base_version` plus its events).
    pub version: u64,
    /// The rows to append: the events, and one command-log row per distinct command id.
    pub events: Vec<NewEvent>,
    pub log: Vec<LogRow>,
    pub decisions: Vec<Decision<A>>,
    /// Whether deciding copied the held state (there was no twin in step to take).
    pub copied: bool,
    /// The twin with the batch's earlier events applied, if a later command needed it.
    copy: Option<A>,
    /// Accepted events not yet applied to `copy` (or, without a copy, to anything).
    unapplied: Vec<A::Event>,
}

/// Decides every command of the batch in order, leaving the held state as it is. A later
/// command is decided on the twin (taken out of `twin` if it is at the held version, else copied
/// from the held state) with the batch's earlier events applied.
pub(super) fn decide<A, R>(
    loaded: &Loaded<A>,
    twin: &mut Option<Twin<A>>,
    batch: &[R],
    services: &A::Services,
) -> Result<Plan<A>, Error>
where
    A: DomainAggregate,
    R: AsRef<Request<A>>,
{
    let mut plan = Plan {
        base_version: loaded.version,
        version: loaded.version,
        events: Vec::new(),
        log: Vec::new(),
        decisions: Vec::with_capacity(batch.len()),
        copied: false,
        copy: None,
        unapplied: Vec::new(),
    };
    let mut version = loaded.version;
    let mut first_of: HashMap<Uuid, usize> = HashMap::new();
    for (i, request) in batch.iter().map(AsRef::as_ref).enumerate() {
        let id = request.meta.command_id;
        if let Some(&first) = first_of.get(&id) {
            let same = batch[first]
                .as_ref()
                .meta
                .same_request(request.meta.fingerprint.as_deref());
            plan.decisions.push(if same {
                Decision::SameAs(first)
            } else {
                Decision::Reused(first)
            });
            continue;
        }
        first_of.insert(id, i);
        let command_type = request.command.command_type();
        if !plan.unapplied.is_empty() {
            let copy = plan.copy.get_or_insert_with(|| match twin.take() {
                Some(t) if t.version == loaded.version => t.aggregate,
                _ => {
                    plan.copied = true;
                    loaded.aggregate.clone()
                }
            });
            for event in plan.unapplied.drain(..) {
                copy.apply(event);
            }
        }
        let current = plan.copy.as_ref().unwrap_or(&loaded.aggregate);
        let (stored, decision) = match current.decide(request.command.clone(), services) {
            Ok(events) => {
                let first_sequence = version + 1;
                let metadata = request.meta.to_map();
                let start = plan.events.len();
                for event in &events {
                    version += 1;
                    plan.events.push(NewEvent::new(version, event, &metadata)?);
                }
                plan.unapplied.extend(events.iter().cloned());
                let stored = StoredResult::<&A::Error>::Accepted {
                    first_sequence,
                    last_sequence: version,
                };
                let decision = Decision::Accepted {
                    version,
                    events,
                    range: start..plan.events.len(),
                };
                (stored.to_json()?, decision)
            }
            Err(error) => (
                StoredResult::Rejected(&error).to_json()?,
                Decision::Rejected(error),
            ),
        };
        plan.log.push(LogRow {
            command_id: id,
            command_type,
            outcome: stored,
            fingerprint: request.meta.fingerprint.clone(),
        });
        plan.decisions.push(decision);
    }
    plan.version = version;
    Ok(plan)
}

impl<A: DomainAggregate> Plan<A> {
    /// The batch is written: the held state takes its events and version, and so does the
    /// twin (the copy the batch was decided on, or the twin left in `twin` if it was in step).
    /// Returns the decisions to answer with.
    pub fn commit(self, loaded: &mut Loaded<A>, twin: &mut Option<Twin<A>>) -> Vec<Decision<A>> {
        let version = self.version;
        match self.copy {
            Some(mut copy) => {
                for event in self.unapplied {
                    copy.apply(event);
                }
                for decision in &self.decisions {
                    if let Decision::Accepted { events, .. } = decision {
                        for event in events {
                            loaded.aggregate.apply(event.clone());
                        }
                    }
                }
                *twin = Some(Twin {
                    version,
                    aggregate: copy,
                });
            }
            None => {
                // Every event of the batch is still unapplied.
                match twin {
                    Some(t) if t.version == self.base_version => {
                        for event in &self.unapplied {
                            t.aggregate.apply(event.clone());
                        }
                        t.version = version;
                    }
                    _ => *twin = None,
                }
                for event in self.unapplied {
                    loaded.aggregate.apply(event);
                }
            }
        }
        loaded.version = version;
        loaded.events_read = 0;
        debug_assert!(
            twin.as_ref()
                .is_none_or(|t| t.aggregate == loaded.aggregate),
            "the twin is in step with the held state"
        );
        self.decisions
    }
}

/// Each command's answer, in the batch's order, once its plan is written at `positions` (one
/// per event of the plan).
pub(super) fn answers<A, R>(
    batch: &[R],
    decisions: Vec<Decision<A>>,
    positions: &[LogPosition],
) -> Vec<Result<Outcome<A>, Error>>
where
    A: DomainAggregate,
    R: AsRef<Request<A>>,
{
    let mut outcomes: Vec<Outcome<A>> = Vec::with_capacity(batch.len());
    let mut reused = vec![false; batch.len()];
    for (i, decision) in decisions.into_iter().enumerate() {
        let command_id = batch[i].as_ref().meta.command_id;
        let outcome = match decision {
            Decision::Accepted {
                version,
                events,
                range,
            } => Outcome {
                command_id,
                duplicate: false,
                result: Ok(Committed {
                    version,
                    events,
                    positions: positions[range].to_vec(),
                }),
            },
            Decision::Rejected(error) => Outcome {
                command_id,
                duplicate: false,
                result: Err(error),
            },
            Decision::SameAs(first) => outcomes[first].as_duplicate(),
            Decision::Reused(first) => {
                reused[i] = true;
                outcomes[first].as_duplicate()
            }
        };
        outcomes.push(outcome);
    }
    outcomes
        .into_iter()
        .zip(batch)
        .zip(reused)
        .map(|((outcome, request), reused)| {
            if reused {
                let request = request.as_ref();
                Err(Error::CommandIdReused {
                    command_id: request.meta.command_id,
                    used_for: format!("another {} request", request.command.command_type()),
                })
            } else {
                Ok(outcome)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
