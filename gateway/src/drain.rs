//! The end of a graceful stop. After SIGTERM the gateway lets in-flight requests finish for most
//! of the grace period; requests still running when it is nearly over (long streams, requests
//! waiting on a slow upstream or in the queue) are then ended by the gateway itself: a stream
//! with a terminal error event, a waiting request with 503, each with its ledger row holding what
//! was relayed, instead of being cut without a word when the process exits.

use tokio::sync::watch;

/// Fires the [`Deadline`] (held by the server).
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Resolves once in-flight work must end. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Deadline(watch::Receiver<bool>);

pub fn deadline() -> (Trigger, Deadline) {
    let (trigger, deadline) = watch::channel(false);
    (Trigger(trigger), Deadline(deadline))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Deadline {
    /// Waits for the deadline; forever if the trigger is gone without firing (the gateway is
    /// being dropped, and its tasks with it).
    pub async fn reached(&self) {
        let mut deadline = self.0.clone();
        if deadline.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
