//! Waiting for several futures of one task at once, on the shard's executor: the transaction
//! coordinator asks every partition leader for its markers together instead of one after the
//! other. No spawning (the futures may borrow the shard), no locks: one task polls them all.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs every future of `futures` concurrently; their outputs in the same order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    futures_lite::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_the_order_of_the_futures() {
        let out = futures_lite::future::block_on(join_all(vec![
            Box::pin(async {
                futures_lite::future::yield_now().await;
                1
            }) as Pin<Box<dyn Future<Output = i32>>>,
            Box::pin(async { 2 }),
            Box::pin(async {
                futures_lite::future::yield_now().await;
                futures_lite::future::yield_now().await;
                3
            }),
        ]));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
