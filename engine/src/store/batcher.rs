//! The batching primitive of the command bus and of group commit: callers queue work, and the
//! caller that holds a turn (the aggregate's writer, a free append slot) takes everything queued
//! and runs it as one batch, inline, in its own future.
//!
//! Running inline is cheap (no task per batch), but a future can be dropped at any await (an
//! HTTP server drops a request's future when its client hangs up). The batch a caller takes is
//! therefore held by a [`Carried`] guard: work leaves the guard only once it is answered, and if
//! the guard is dropped with work still in it, that work goes back to the front of the queue,
//! where the callers still waiting for it take their turn and run it. Work is done once queued,
//! whether or not its own caller still waits, as long as someone does: a dropped batch in which
//! nobody but its own caller waited for anything is dropped with it, as an unfinished command of
//! one caller always was. Re-running work that a dropped batch had already sent is safe: every
//! append is conditional on the stream's version and keyed by command id, so a second attempt is
//! answered stale or duplicate, never written twice.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::futures::Notified;
use tokio::sync::{oneshot, Notify};

/// Which caller queued an item.
pub(crate) type Ticket = u64;

/// Work that someone waits for.
pub(crate) trait Awaited {
    /// The caller that queued it.
    fn ticket(&self) -> Ticket;
    /// Nobody waits for this work's answer any more.
    fn abandoned(&self) -> bool;
}

/// Whether the receiving end of an answer is gone.
pub(crate) fn gone<T>(reply: &oneshot::Sender<T>) -> bool {
    reply.is_closed()
}

/// A first-in, first-out queue of work, taken in batches.
pub(crate) struct Batcher<T> {
    queue: Mutex<VecDeque<T>>,
    tickets: AtomicU64,
    requeued: Notify,
}

impl<T: Awaited> Batcher<T> {
    pub fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            tickets: AtomicU64::new(0),
            requeued: Notify::new(),
        }
    }

    /// A ticket for a caller's next item.
    pub fn ticket(&self) -> Ticket {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }

    pub fn push(&self, item: T) {
        self.lock().push_back(item);
    }

    /// Takes up to `max` items, oldest first, for the caller holding `mine`, into a guard that
    /// puts back what it still holds when it is dropped.
    pub fn take(&self, max: usize, mine: Ticket) -> Carried<'_, T> {
        let mut queue = self.lock();
        let n = queue.len().min(max.max(1));
        Carried {
            from: self,
            mine,
            items: queue.drain(..n).collect(),
        }
    }

    /// Resolves when a dropped batch put work back. A caller whose work is in another caller's
    /// batch waits for its answer or for this, so work put back is never left without a taker.
    /// Made before looking at the queue, it also sees a put-back that happens in between.
    pub fn requeued(&self) -> Notified<'_> {
        self.requeued.notified()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A batch taken from a [`Batcher`]. Answer an item by removing it from [`items`](Self::items).
/// Dropped with items left (its caller went away, or panicked), it puts them back at the front
/// of the queue, in order, if any of them but its caller's own is still waited for.
pub(crate) struct Carried<'a, T: Awaited> {
    from: &'a Batcher<T>,
    mine: Ticket,
    items: Vec<T>,
}

impl<T: Awaited> Carried<'_, T> {
    pub fn items(&mut self) -> &mut Vec<T> {
        &mut self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T: Awaited> Drop for Carried<'_, T> {
    fn drop(&mut self) {
        let waited_for = self
            .items
            .iter()
            .any(|item| item.ticket() != self.mine && !item.abandoned());
        if !waited_for {
            return;
        }
        let put_back = self.items.len();
        {
            let mut queue = self.from.lock();
            for item in self.items.drain(..).rev() {
                queue.push_front(item);
            }
        }
        tracing::debug!(
            put_back,
            "a batch was dropped before it answered; its work is queued again"
        );
        self.from.requeued.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Work {
        ticket: Ticket,
        reply: oneshot::Sender<Ticket>,
    }

    impl Awaited for Work {
        fn ticket(&self) -> Ticket {
            self.ticket
        }
        fn abandoned(&self) -> bool {
            gone(&self.reply)
        }
    }

    /// A queue of `n` items, tickets 0 to n - 1, and the answer of each.
    fn queue(n: u64) -> (Batcher<Work>, Vec<Option<oneshot::Receiver<Ticket>>>) {
        let batcher = Batcher::new();
        let mut answers = Vec::new();
        for _ in 0..n {
            let (reply, answer) = oneshot::channel();
            let ticket = batcher.ticket();
            batcher.push(Work { ticket, reply });
            answers.push(Some(answer));
        }
        (batcher, answers)
    }

    fn queued(batcher: &Batcher<Work>) -> Vec<Ticket> {
        batcher.lock().iter().map(|w| w.ticket).collect()
    }

    #[test]
    fn a_batch_takes_the_oldest_work_up_to_its_size() {
        let (batcher, _answers) = queue(5);
        let mut batch = batcher.take(3, 0);
        let taken: Vec<Ticket> = batch.items().iter().map(|w| w.ticket).collect();
        assert_eq!(taken, vec![0, 1, 2]);
        assert_eq!(queued(&batcher), vec![3, 4]);
        for w in batch.items().drain(..) {
            w.reply.send(w.ticket).unwrap();
        }
    }

    #[test]
    fn work_a_dropped_batch_did_not_answer_goes_back_to_the_front_in_order() {
        let (batcher, mut answers) = queue(4);
        let mut batch = batcher.take(3, 0);
        let first = batch.items().remove(0);
        first.reply.send(first.ticket).unwrap();
        drop(batch);
        assert_eq!(
            queued(&batcher),
            vec![1, 2, 3],
            "answered work is not queued again"
        );
        assert_eq!(answers[0].take().unwrap().try_recv(), Ok(0));
    }

    #[test]
    fn the_taker_s_own_work_goes_back_with_the_work_others_wait_for() {
        let (batcher, mut answers) = queue(3);
        let batch = batcher.take(3, 0);
        answers[0] = None;
        answers[2] = None;
        drop(batch);
        assert_eq!(
            queued(&batcher),
            vec![0, 1, 2],
            "1 still waits, so all of it is done, as queued work always is"
        );
    }

    #[test]
    fn a_dropped_batch_in_which_nobody_else_waits_is_dropped_with_it() {
        let (batcher, mut answers) = queue(3);
        let batch = batcher.take(3, 0);
        answers[1] = None;
        answers[2] = None;
        drop(batch);
        assert!(queued(&batcher).is_empty(), "its own caller is going away");
    }

    #[tokio::test]
    async fn a_put_back_wakes_whoever_waits_for_work_to_take() {
        let (batcher, _answers) = queue(2);
        let batch = batcher.take(2, 0);
        let requeued = batcher.requeued();
        drop(batch);
        tokio::time::timeout(std::time::Duration::from_secs(1), requeued)
            .await
            .expect("woken by the put-back");
    }
}
