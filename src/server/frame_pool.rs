//! The shard's pool of request-frame buffers. A frame is read into a buffer taken from the
//! pool and handed to the decoder as `Bytes` whose owner puts the buffer back when the last
//! slice of the request is dropped, so a steady stream of produce requests reads into memory
//! that is already allocated and initialised: no allocation, no zeroing and no growth copies
//! per request (they were ~10% of the broker's produce CPU in a profile of 1 KiB records).
//! Thread-local: each shard thread has its own pool and touches no other core's buffers.
//!
//! Bounded: at most [`POOLED`] buffers of at most [`MAX_POOLED_BYTES`] each stay pooled per
//! thread; larger frames are read into a buffer that is freed after the request.

use std::cell::RefCell;

use bytes::Bytes;

/// Buffers kept per thread.
pub const POOLED: usize = 4;
/// Largest buffer kept (a frame of more than this is freed after its request).
pub const MAX_POOLED_BYTES: usize = 4 << 20;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer for the next frame: a pooled one if there is one, else a new empty one. Its
/// `len` is how much of it is initialised (a pooled buffer is initialised up to its length,
/// which [`FrameBuffer::room`] reuses without zeroing).
pub fn take() -> FrameBuffer {
    let buf = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    FrameBuffer { buf, filled: 0 }
}

/// Buffers in this thread's pool and their capacity in bytes.
pub fn gauge() -> (usize, usize) {
    POOL.with(|p| {
        let pool = p.borrow();
        (pool.len(), pool.iter().map(Vec::capacity).sum())
    })
}

fn give_back(buf: Vec<u8>) {
    if buf.capacity() > MAX_POOLED_BYTES {
        return;
    }
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < POOLED {
            pool.push(buf);
        }
    });
}

/// A frame being read: `filled` bytes of it have arrived.
pub struct FrameBuffer {
    buf: Vec<u8>,
    filled: usize,
}

impl FrameBuffer {
    /// The next `step` bytes of the frame to read into, after the `filled` ones. Grows the
    /// buffer (zeroing only bytes it never held) when it is too short.
    pub fn room(&mut self, step: usize) -> &mut [u8] {
        let end = self.filled + step;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        &mut self.buf[self.filled..end]
    }

    /// Counts `n` more bytes as read (after filling [`FrameBuffer::room`]).
    pub fn advance(&mut self, n: usize) {
        self.filled += n;
    }

    /// Bytes read so far.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// The frame read so far as `Bytes`; the buffer goes back to the pool when the last
    /// slice of it is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(PooledFrame {
            buf: self.buf,
            len: self.filled,
        })
    }
}

/// The owner behind a frame's `Bytes`: shows the frame's bytes and returns the buffer to the
/// pool of the thread that drops it.
struct PooledFrame {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for PooledFrame {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledFrame {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_frame(bytes: &[u8], step: usize) -> Bytes {
        let mut frame = take();
        for chunk in bytes.chunks(step) {
            frame.room(chunk.len()).copy_from_slice(chunk);
            frame.advance(chunk.len());
        }
        frame.freeze()
    }

    #[test]
    fn a_dropped_frame_is_reused_and_shows_only_its_own_bytes() {
        let first = read_frame(&[7u8; 1000], 300);
        assert_eq!(first.len(), 1000);
        let tail = first.slice(900..);
        drop(first);
        assert_eq!(gauge().0, 0, "a slice still holds the buffer");
        drop(tail);
        assert_eq!(gauge().0, 1);
        let second = read_frame(&[1, 2, 3], 2);
        assert_eq!(
            &second[..],
            &[1, 2, 3],
            "no bytes of the earlier frame show"
        );
        assert_eq!(gauge().0, 0, "the pooled buffer was taken");
        drop(second);
        assert_eq!(gauge().0, 1);
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_size() {
        let big = read_frame(&vec![0u8; MAX_POOLED_BYTES + 1], 1 << 20);
        drop(big);
        assert_eq!(gauge().0, 0, "an oversized buffer is freed");
        let frames: Vec<Bytes> = (0..POOLED + 2).map(|_| read_frame(&[1; 10], 10)).collect();
        drop(frames);
        assert_eq!(gauge().0, POOLED);
    }
}
