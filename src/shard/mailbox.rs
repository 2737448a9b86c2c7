//! The cross-core mailbox: the one way a shard asks another shard to run an operation on
//! partitions it owns (today: a transaction coordinator writing a COMMIT/ABORT marker) and
//! waits for the answer. Every ordered pair of shards has its own bounded SPSC glommio
//! `shared_channel`; a shard's outbox to peer `p` carries both its questions to `p` and its
//! answers to `p`'s questions, so one receive loop per peer serves both directions.
//!
//! Built in two steps because glommio channel ends must be connected on the executor that
//! uses them: [`mesh`] runs on the main thread before the executors start and makes the
//! unconnected ends, then each shard calls [`Mailbox::connect`] on its own core. The data
//! plane never uses this; only coordinator work does.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

/// Questions plus answers in flight from one shard to one peer; a full channel makes the
/// sender wait, which bounds the memory a burst of coordinator work can take.
pub const CHANNEL_DEPTH: usize = 256;

/// Longest an asker waits for an answer. A peer that is shutting down may never answer;
/// the coordinator then retries later instead of hanging a client request forever.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// What travels on a channel.
pub enum Envelope<Q, A> {
    /// A question from the sending shard, to run on the receiving one.
    Ask {
        /// Chosen by the asker (unique among its questions) to match the answer.
        id: u64,
        /// What to run.
        question: Q,
    },
    /// The answer to the receiving shard's question `id`.
    Answer {
        /// The id of the question answered.
        id: u64,
        /// The handler's result.
        answer: A,
    },
}

/// Why a question got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// `to` is not a peer of this shard: no such core, or the asking shard itself.
    #[error("shard {0} does not exist")]
    NoSuchShard(usize),
    /// The channel to or from the peer is closed: the peer stopped or is stopping.
    #[error("shard {0} is not reachable (stopped or stopping)")]
    Closed(usize),
    /// No answer within `ASK_TIMEOUT`.
    #[error("shard {0} did not answer in time")]
    TimedOut(usize),
}

/// The unconnected channel ends of one shard: index `p` talks to (or hears from) peer `p`;
/// the shard's own index is empty.
pub struct MailboxEnds<Q: Send + 'static, A: Send + 'static> {
    core: usize,
    outboxes: Vec<Option<SharedSender<Envelope<Q, A>>>>,
    inboxes: Vec<Option<SharedReceiver<Envelope<Q, A>>>>,
}

/// Makes the channel ends of a full mesh between `cores` shards; element `c` goes to core `c`.
pub fn mesh<Q: Send + 'static, A: Send + 'static>(cores: usize) -> Vec<MailboxEnds<Q, A>> {
    let mut ends: Vec<MailboxEnds<Q, A>> = (0..cores)
        .map(|core| MailboxEnds {
            core,
            outboxes: (0..cores).map(|_| None).collect(),
            inboxes: (0..cores).map(|_| None).collect(),
        })
        .collect();
    for from in 0..cores {
        for to in (0..cores).filter(|to| *to != from) {
            let (sender, receiver) = shared_channel::new_bounded(CHANNEL_DEPTH);
            ends[from].outboxes[to] = Some(sender);
            ends[to].inboxes[from] = Some(receiver);
        }
    }
    ends
}

/// Runs a question on the shard that received it and produces the answer.
pub type Handler<Q, A> = Rc<dyn Fn(Q) -> Pin<Box<dyn Future<Output = A>>>>;

/// One shard's connected mailbox.
pub struct Mailbox<Q: Send + 'static, A: Send + 'static> {
    core: usize,
    outboxes: Vec<Option<ConnectedSender<Envelope<Q, A>>>>,
    /// Questions this shard asked that wait for an answer, by id.
    pending: RefCell<HashMap<u64, LocalSender<A>>>,
    next_id: Cell<u64>,
}

impl<Q: Send + 'static, A: Send + 'static> Mailbox<Q, A> {
    /// Connects this shard's ends and starts one receive loop per peer that answers
    /// questions with `handler`. Every shard must call this concurrently: a glommio channel
    /// connects only once both of its ends do, so the ends are connected all at once rather
    /// than one after another (which would deadlock two shards waiting on each other).
    pub async fn connect(ends: MailboxEnds<Q, A>, handler: Handler<Q, A>) -> Rc<Self> {
        let core = ends.core;
        let outbox_tasks: Vec<_> = ends
            .outboxes
            .into_iter()
            .map(|end| glommio::spawn_local(async move { Some(end?.connect().await) }))
            .collect();
        let inbox_tasks: Vec<_> = ends
            .inboxes
            .into_iter()
            .map(|end| glommio::spawn_local(async move { Some(end?.connect().await) }))
            .collect();
        let mut outboxes = Vec::with_capacity(outbox_tasks.len());
        for task in outbox_tasks {
            outboxes.push(task.await);
        }
        let mut inboxes = Vec::with_capacity(inbox_tasks.len());
        for task in inbox_tasks {
            inboxes.push(task.await);
        }
        let mailbox = Rc::new(Self {
            core,
            outboxes,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
        });
        for (peer, inbox) in inboxes.into_iter().enumerate() {
            if let Some(inbox) = inbox {
                glommio::spawn_local(receive_loop(mailbox.clone(), peer, inbox, handler.clone()))
                    .detach();
            }
        }
        mailbox
    }

    /// The shard (core index) this mailbox belongs to.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Asks shard `to` to run `question` and waits for its answer.
    pub async fn ask(&self, to: usize, question: Q) -> Result<A, MailboxError> {
        let outbox = self
            .outboxes
            .get(to)
            .and_then(Option::as_ref)
            .ok_or(MailboxError::NoSuchShard(to))?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (sender, receiver) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, sender);
        let _forget = PendingGuard { mailbox: self, id };
        if outbox.send(Envelope::Ask { id, question }).await.is_err() {
            return Err(MailboxError::Closed(to));
        }
        future::or(
            async { receiver.recv().await.ok_or(MailboxError::Closed(to)) },
            async {
                glommio::timer::sleep(ASK_TIMEOUT).await;
                Err(MailboxError::TimedOut(to))
            },
        )
        .await
    }

    fn settle(&self, id: u64, answer: A) {
        if let Some(waiter) = self.pending.borrow_mut().remove(&id) {
            // One-slot channel, one send: it cannot be full; a dropped asker is ignored.
            let _ = waiter.try_send(answer);
        }
    }
}

/// Forgets a pending question however `ask` ends (answered, timed out, dropped).
struct PendingGuard<'a, Q: Send + 'static, A: Send + 'static> {
    mailbox: &'a Mailbox<Q, A>,
    id: u64,
}

impl<Q: Send + 'static, A: Send + 'static> Drop for PendingGuard<'_, Q, A> {
    fn drop(&mut self) {
        self.mailbox.pending.borrow_mut().remove(&self.id);
    }
}

/// Serves one peer's channel until the peer goes away: answers are matched to pending
/// questions; each question runs in its own task so a slow one never blocks the others.
async fn receive_loop<Q: Send + 'static, A: Send + 'static>(
    mailbox: Rc<Mailbox<Q, A>>,
    peer: usize,
    inbox: ConnectedReceiver<Envelope<Q, A>>,
    handler: Handler<Q, A>,
) {
    while let Some(envelope) = inbox.recv().await {
        match envelope {
            Envelope::Answer { id, answer } => mailbox.settle(id, answer),
            Envelope::Ask { id, question } => {
                let (mailbox, handler) = (mailbox.clone(), handler.clone());
                glommio::spawn_local(async move {
                    let answer = handler(question).await;
                    let Some(outbox) = mailbox.outboxes.get(peer).and_then(Option::as_ref) else {
                        return;
                    };
                    if outbox.send(Envelope::Answer { id, answer }).await.is_err() {
                        tracing::debug!(peer, "peer left before its answer was sent");
                    }
                })
                .detach();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement};

    /// Each shard answers "what is x times (core + 2)", so an answer proves which core ran it.
    fn handler(core: usize) -> Handler<u64, (usize, u64)> {
        Rc::new(move |x: u64| Box::pin(async move { (core, x * (core as u64 + 2)) }))
    }

    #[test]
    fn every_shard_can_ask_every_other_and_gets_its_own_answers() {
        let cores = 3;
        let ends = mesh::<u64, (usize, u64)>(cores);
        let handles: Vec<_> = ends
            .into_iter()
            .enumerate()
            .map(|(core, ends)| {
                LocalExecutorBuilder::new(Placement::Unbound)
                    .spawn(move || async move {
                        let mailbox = Mailbox::connect(ends, handler(core)).await;
                        let mut answers = Vec::new();
                        for to in (0..cores).filter(|to| *to != core) {
                            // Many concurrent questions: ids must route answers correctly.
                            let asks: Vec<_> = (0..50u64)
                                .map(|x| {
                                    let m = mailbox.clone();
                                    glommio::spawn_local(async move { (x, m.ask(to, x).await) })
                                })
                                .collect();
                            for ask in asks {
                                let (x, got) = ask.await;
                                answers.push((to, x, got));
                            }
                        }
                        // Keep serving until peers finish asking us.
                        glommio::timer::sleep(Duration::from_millis(300)).await;
                        (mailbox.ask(core, 1).await, answers)
                    })
                    .expect("executor starts")
            })
            .collect();
        for handle in handles {
            let (own, answers) = handle.join().expect("shard thread ends cleanly");
            assert!(matches!(own, Err(MailboxError::NoSuchShard(_))));
            assert_eq!(answers.len(), 100);
            for (to, x, got) in answers {
                assert_eq!(got, Ok((to, x * (to as u64 + 2))));
            }
        }
    }
}
