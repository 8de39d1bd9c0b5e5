//! The queue between what is worth a notification and the server's
//! delivery tasks. Bounded: when deliveries cannot keep up, new ones are
//! dropped (and counted in the log) rather than held without limit. It is
//! offered to without waiting, so nothing that records a change ever waits
//! for a target.

use super::{store, Notification, Target};
use crate::{db::Db, error::AppError};
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};
use tokio::sync::mpsc;

/// Deliveries waiting for a delivery task.
pub const CAPACITY: usize = 256;

/// One notification for one target.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: Target,
    pub notification: Notification,
}

/// Where deliveries are queued. Cheap to clone; provided to server
/// functions and the API like the database.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::Sender<Job>,
    dropped: Arc<AtomicU64>,
    /// What links in notifications start with (`--public-url`).
    public_url: Arc<str>,
}

impl Outbox {
    /// An outbox of [`CAPACITY`] and the receiving end for the delivery tasks.
    pub fn new(public_url: &str) -> (Self, mpsc::Receiver<Job>) {
        let (sender, receiver) = mpsc::channel(CAPACITY);
        let outbox = Self {
            sender,
            dropped: Arc::default(),
            public_url: public_url.trim_end_matches('/').into(),
        };
        (outbox, receiver)
    }

    /// The dashboard's address as links use it, without a trailing `/`.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Queues a delivery; `false` (and a warning) when the queue is full.
    pub fn offer(&self, job: Job) -> bool {
        match self.sender.try_send(job) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(job)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    target_id = job.target.id,
                    dropped,
                    "notification queue full: delivery dropped"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a test notification to target `id`.
    pub async fn send_test(&self, db: &Db, id: i32) -> Result<(), AppError> {
        let target = store::get(db, id).await?;
        let notification =
            Notification::test(format!("{}/", self.public_url), crate::db::now_millis());
        if self.offer(Job {
            target,
            notification,
        }) {
            Ok(())
        } else {
            Err(AppError::TooMany(format!(
                "{CAPACITY} notifications are waiting to be delivered: try again in a minute"
            )))
        }
    }
}
