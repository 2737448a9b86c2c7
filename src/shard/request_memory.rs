//! The shard's budget for request frames held in memory (`queued.max.request.bytes`, split
//! evenly between the shards). A connection charges a frame's body to the budget step by step
//! as it reads it (see `server::frame`), never more ahead of the bytes that actually arrived
//! than those bytes themselves, and keeps the charge until the request has been answered. When
//! the budget is spent, frames wait, which stops reading from those sockets and pushes back on
//! their clients through TCP. Charging what arrives, not what a frame announces, is what keeps
//! connections that announce large frames and then stall from starving everyone else. Lives on
//! its shard; nothing here crosses cores.

use std::rc::Rc;

use glommio::sync::Semaphore;

/// This shard's budget of bytes held by request frames being read or served; frames wait when it is
/// spent.
pub struct RequestMemory {
    /// None: unbounded (`queued.max.request.bytes=-1`, Kafka's default).
    budget: Option<(Rc<Semaphore>, u64)>,
}

/// Bytes of the budget one frame holds; returned to the budget when dropped.
pub struct Reservation {
    semaphore: Option<Rc<Semaphore>>,
    held: u64,
}

impl Reservation {
    /// Bytes this frame holds.
    pub fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(semaphore) = &self.semaphore
            && self.held > 0
        {
            semaphore.signal(self.held);
        }
    }
}

impl RequestMemory {
    /// `bytes` is this shard's share of the budget; `None` for no limit.
    pub fn new(bytes: Option<u64>) -> Self {
        Self {
            budget: bytes.map(|b| (Rc::new(Semaphore::new(b)), b)),
        }
    }

    /// A reservation of nothing yet, to grow as a frame's bytes arrive.
    pub fn empty(&self) -> Reservation {
        Reservation {
            semaphore: self.budget.as_ref().map(|(s, _)| s.clone()),
            held: 0,
        }
    }

    /// Waits until `len` more bytes fit in the budget and adds them to `reservation`. A frame
    /// never holds more than the whole budget: one larger than the budget takes all of it, so
    /// it waits for every other frame but is not refused (`socket.request.max.bytes` is the
    /// limit on a single frame).
    pub async fn grow(&self, reservation: &mut Reservation, len: u64) -> std::io::Result<()> {
        let Some((semaphore, capacity)) = &self.budget else {
            return Ok(());
        };
        let units = len.min(capacity.saturating_sub(reservation.held));
        if units == 0 {
            return Ok(());
        }
        semaphore
            .acquire(units)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        reservation.held += units;
        Ok(())
    }

    /// Reserves `len` bytes at once (a whole frame whose size is known and small).
    pub async fn reserve(&self, len: u64) -> std::io::Result<Reservation> {
        let mut reservation = self.empty();
        self.grow(&mut reservation, len).await?;
        Ok(reservation)
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
            // Growing a reservation step by step charges each step and returns the sum.
            let mut growing = memory.empty();
            memory.grow(&mut growing, 30).await.unwrap();
            memory.grow(&mut growing, 60).await.unwrap();
            assert_eq!((growing.held(), memory.available()), (90, Some(10)));
            memory.grow(&mut growing, 500).await.unwrap();
            assert_eq!((growing.held(), memory.available()), (100, Some(0)));
            drop(growing);
            assert_eq!(memory.available(), Some(100));
            assert_eq!(RequestMemory::new(None).available(), None);
        });
    }
}
