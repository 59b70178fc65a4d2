//! Postcard encoding into a `Vec<u8>` for the hot paths: state snapshots (millions of small
//! entries) and records sent over the network. postcard's own `Vec` flavors hand every varint
//! (a few bytes) to `memcpy` — a call per field that was the largest single item of q5's
//! checkpoint cost; this flavor copies short slices inline. Same bytes as `postcard::to_stdvec`.

use postcard::ser_flavors::Flavor;
use serde::Serialize;

/// Appends to a `Vec<u8>`.
struct VecFlavor(Vec<u8>);

impl Flavor for VecFlavor {
    type Output = Vec<u8>;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 16 {
            self.0.reserve(data.len());
            for &b in data {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Appends the postcard encoding of `value` to `out` and returns it.
#[inline]
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: Vec<u8>) -> postcard::Result<Vec<u8>> {
    postcard::serialize_with_flavor(value, VecFlavor(out))
}

/// The postcard encoding of `value` (as `postcard::to_stdvec`).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
    encode_into(value, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_postcard() {
        let value = (
            -5i64,
            u64::MAX,
            "a longer string than sixteen bytes",
            vec![(1i32, "x".to_string()); 3],
            Some(1.5f64),
        );
        assert_eq!(
            encode(&value).unwrap(),
            postcard::to_stdvec(&value).unwrap()
        );
        let prefix = vec![9u8, 9];
        let mut expected = prefix.clone();
        expected.extend(postcard::to_stdvec(&value).unwrap());
        assert_eq!(encode_into(&value, prefix).unwrap(), expected);
    }
}
