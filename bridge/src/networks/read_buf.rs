//! One read buffer per thread, shared by every connection the thread drives.
//!
//! A login waits for its socket to be readable (`readable()`), then reads what is there
//! with `try_read`/`try_recv` into this thread's buffer and hands the bytes to its
//! protocol session at once, in the same synchronous step. An idle login therefore holds
//! no read buffer: with one per connection, 10,000 idle logins held 10,000 buffers.

use std::cell::RefCell;
use std::io;

/// Large enough for any UDP datagram (ICQ) and for a good gulp of a TCP stream.
const SIZE: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads with `read` into this thread's buffer and passes what came to `consume`.
///
/// `Ok(Some(n))`: `n` bytes were read and consumed (0: end of stream for TCP, an empty
/// datagram for UDP); `Ok(None)`: nothing to read after all (readiness can be spurious).
pub fn read_into(
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    consume: impl FnOnce(&[u8]),
) -> io::Result<Option<usize>> {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.is_empty() {
                buffer.resize(SIZE, 0);
            }
            finish(read(&mut buffer), &buffer, consume)
        }
        // Only if `consume` read a socket itself; never the case, but not worth a panic.
        Err(_) => {
            let mut own = vec![0u8; SIZE];
            finish(read(&mut own), &own, consume)
        }
    })
}

fn finish(
    read: io::Result<usize>,
    buffer: &[u8],
    consume: impl FnOnce(&[u8]),
) -> io::Result<Option<usize>> {
    match read {
        Ok(n) => {
            consume(&buffer[..n]);
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_reach_the_consumer_and_would_block_is_nothing() {
        let mut got = Vec::new();
        let n = read_into(
            |b| {
                b[..3].copy_from_slice(b"abc");
                Ok(3)
            },
            |bytes| got.extend_from_slice(bytes),
        );
        assert_eq!(n.unwrap(), Some(3));
        assert_eq!(got, b"abc");
        let n = read_into(|_| Err(io::ErrorKind::WouldBlock.into()), |_| panic!());
        assert_eq!(n.unwrap(), None);
        let e = read_into(|_| Err(io::ErrorKind::ConnectionReset.into()), |_| panic!());
        assert_eq!(e.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn a_nested_read_gets_a_buffer_of_its_own() {
        let mut inner = Vec::new();
        read_into(
            |_| Ok(0),
            |_| {
                read_into(
                    |b| {
                        b[0] = 7;
                        Ok(1)
                    },
                    |bytes| inner.extend_from_slice(bytes),
                )
                .unwrap();
            },
        )
        .unwrap();
        assert_eq!(inner, [7]);
    }
}
