//! The shard's budget for request frames held in memory (`queued.max.request.bytes`, split
//! evenly between the shards). A connection reserves its frame's size before reading the body
//! and keeps the reservation until the request has been answered; when the budget is spent,
//! new frames wait, which stops reading from those sockets and pushes back on their clients
//! through TCP. Without it, many connections each sending a large frame could exhaust memory.
//! Lives on its shard; nothing here crosses cores.

use std::rc::Rc;

use glommio::sync::{Semaphore, StaticPermit};

pub struct RequestMemory {
    /// None: unbounded (`queued.max.request.bytes=-1`, Kafka's default).
    budget: Option<(Rc<Semaphore>, u64)>,
}

/// Held while a frame is in memory; returns its bytes to the budget when dropped.
pub struct Reservation {
    _permit: Option<StaticPermit>,
}

impl RequestMemory {
    /// `bytes` is this shard's share of the budget; `None` for no limit.
    pub fn new(bytes: Option<u64>) -> Self {
        Self {
            budget: bytes.map(|b| (Rc::new(Semaphore::new(b)), b)),
        }
    }

    /// Waits until `len` bytes fit in the budget and reserves them. A frame larger than the
    /// whole budget reserves all of it, so it waits for every other frame but is not refused
    /// (`socket.request.max.bytes` is the limit on a single frame).
    pub async fn reserve(&self, len: u64) -> std::io::Result<Reservation> {
        let Some((semaphore, capacity)) = &self.budget else {
            return Ok(Reservation { _permit: None });
        };
        let permit = semaphore
            .acquire_static_permit(len.min(*capacity))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Reservation {
            _permit: Some(permit),
        })
    }

    /// Bytes still free in the budget (None when unbounded).
    pub fn available(&self) -> Option<u64> {
        self.budget.as_ref().map(|(s, _)| s.available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_wait_for_room_and_give_it_back() {
        glommio::LocalExecutor::default().run(async {
            let memory = Rc::new(RequestMemory::new(Some(100)));
            let first = memory.reserve(80).await.unwrap();
            assert_eq!(memory.available(), Some(20));
            let waiter = {
                let memory = memory.clone();
                glommio::spawn_local(async move { memory.reserve(50).await.map(|_| ()) })
            };
            glommio::yield_if_needed().await;
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            assert_eq!(
                memory.available(),
                Some(20),
                "the second frame is still waiting"
            );
            drop(first);
            waiter.await.unwrap();
            assert_eq!(memory.available(), Some(100));
            // Larger than the budget: takes all of it rather than waiting forever.
            let whole = memory.reserve(1_000).await.unwrap();
            assert_eq!(memory.available(), Some(0));
            drop(whole);
            assert_eq!(RequestMemory::new(None).available(), None);
        });
    }
}
