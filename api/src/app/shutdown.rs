//! [`Shutdown`]: the one signal that tells every task of a process to stop after its current
//! batch. Cloned into each task; [`Shutdown::signal`] fires it once for all.

use std::sync::Arc;

use tokio::sync::watch;

/// The process's stop signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Tells every task to stop.
    pub fn signal(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_signalled(&self) -> bool {
        *self.tx.borrow()
    }

    /// What a worker watches (true once signalled).
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Completes when the signal fires.
    pub async fn signalled(&self) {
        let mut rx = self.receiver();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_hears_the_one_signal() {
        let shutdown = Shutdown::new();
        let mut rx = shutdown.receiver();
        let waiter = tokio::spawn({
            let s = shutdown.clone();
            async move { s.signalled().await }
        });
        assert!(!shutdown.is_signalled());
        shutdown.clone().signal();
        waiter.await.unwrap();
        rx.changed().await.unwrap();
        assert!(*rx.borrow());
        assert!(shutdown.is_signalled());
    }
}
