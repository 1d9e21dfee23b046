//! Given/when/then for maintenance jobs.

use crate::domain::{FieldError, MaintenanceError, TransitionError};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::domain::DomainAggregate;

type MaintenanceTest = TestFramework<Maintenance>;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn start() -> MaintenanceCommand {
    MaintenanceCommand::StartRebuild {
        projections: vec!["orders".into()],
        actor: "admin:alice".into(),
        reason: "a view was changed".into(),
        at: t(0),
    }
}

fn started() -> MaintenanceEvent {
    MaintenanceEvent::RebuildStarted {
        projections: vec!["orders".into()],
        actor: "admin:alice".into(),
        reason: "a view was changed".into(),
        at: t(0),
    }
}

fn rotation() -> MaintenanceCommand {
    MaintenanceCommand::RecordKeyRotation {
        master_key_fingerprint: "0f1e2d3c4b5a6978".into(),
        resealed: 3,
        unchanged: 1,
        actor: "admin:alice".into(),
        reason: "yearly rotation".into(),
        at: t(0),
    }
}

fn wrong_state(state: &str, command: &str) -> MaintenanceError {
    MaintenanceError::from(TransitionError::InvalidTransition {
        state: state.into(),
        command: command.into(),
    })
}

#[test]
fn a_rebuild_starts_with_who_asked_and_why() {
    MaintenanceTest::with(())
        .given_no_previous_events()
        .when(start())
        .then_expect_events(vec![started()]);
}

#[test]
fn a_running_rebuild_finishes_with_the_events_it_read() {
    MaintenanceTest::with(())
        .given(vec![started()])
        .when(MaintenanceCommand::FinishRebuild {
            events: 1_234,
            at: t(9),
        })
        .then_expect_events(vec![MaintenanceEvent::RebuildFinished {
            events: 1_234,
            at: t(9),
        }]);
    let job = crate::domain::replay::<Maintenance>([
        started(),
        MaintenanceEvent::RebuildFinished {
            events: 1_234,
            at: t(9),
        },
    ]);
    let record = job.record().unwrap();
    assert_eq!(record.status, JobStatus::Finished { at: t(9) });
    assert_eq!(
        record.job,
        Job::Rebuild {
            projections: vec!["orders".into()],
            events: Some(1_234)
        }
    );
}

#[test]
fn a_failure_message_is_kept_bounded() {
    let job = crate::domain::replay::<Maintenance>([started()]);
    let events = job
        .decide(
            MaintenanceCommand::FailRebuild {
                error: "x".repeat(10_000),
                at: t(3),
            },
            &(),
        )
        .unwrap();
    let [MaintenanceEvent::RebuildFailed { error, .. }] = events.as_slice() else {
        panic!("expected one RebuildFailed, got {events:?}");
    };
    assert_eq!(error.chars().count(), 500);
}

#[test]
fn a_job_starts_only_once_and_ends_only_once() {
    MaintenanceTest::with(())
        .given(vec![started()])
        .when(start())
        .then_expect_error(wrong_state("Running", "StartRebuild"));
    let failed = MaintenanceEvent::RebuildFailed {
        error: "another rebuild of orders is running".into(),
        at: t(1),
    };
    MaintenanceTest::with(())
        .given(vec![started(), failed.clone()])
        .when(MaintenanceCommand::FinishRebuild {
            events: 1,
            at: t(2),
        })
        .then_expect_error(wrong_state("Failed", "FinishRebuild"));
    MaintenanceTest::with(())
        .given_no_previous_events()
        .when(MaintenanceCommand::FailRebuild {
            error: "boom".into(),
            at: t(2),
        })
        .then_expect_error(wrong_state("New", "FailRebuild"));
}

#[test]
fn a_rebuild_needs_a_projection_and_a_reason() {
    let mut none = start();
    let MaintenanceCommand::StartRebuild { projections, .. } = &mut none else {
        unreachable!()
    };
    projections.clear();
    assert_eq!(
        Maintenance::default().decide(none, &()).unwrap_err(),
        MaintenanceError::from(FieldError::TextRequired {
            field: "projections".into()
        })
    );
    let mut no_reason = start();
    let MaintenanceCommand::StartRebuild { reason, .. } = &mut no_reason else {
        unreachable!()
    };
    reason.clear();
    assert_eq!(
        Maintenance::default().decide(no_reason, &()).unwrap_err(),
        MaintenanceError::from(FieldError::TextRequired {
            field: "reason".into()
        })
    );
}

#[test]
fn a_key_rotation_is_recorded_once_as_finished() {
    MaintenanceTest::with(())
        .given_no_previous_events()
        .when(rotation())
        .then_expect_events(vec![MaintenanceEvent::MasterKeyRotated {
            master_key_fingerprint: "0f1e2d3c4b5a6978".into(),
            resealed: 3,
            unchanged: 1,
            actor: "admin:alice".into(),
            reason: "yearly rotation".into(),
            at: t(0),
        }]);
    let done = Maintenance::default().decide(rotation(), &()).unwrap();
    MaintenanceTest::with(())
        .given(done)
        .when(rotation())
        .then_expect_error(wrong_state("Finished", "RecordKeyRotation"));
}
