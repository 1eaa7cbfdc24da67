//! [`IntoValue`]: what a proposal or a guarded write's value may be given
//! as.

use bytes::Bytes;

/// A value tenure stores: a proposal ([`Election::campaign`],
/// [`Leadership::proclaim`]) or the value of a
/// [`guarded_put`](crate::Leadership::guarded_put).
///
/// Implemented for owned and borrowed strings and bytes, so a caller
/// passes what it has: `&str`, `&String`, `String`, `&[u8]`, `&Vec<u8>`,
/// `Vec<u8>`, byte arrays, [`Bytes`]. Borrowed values are copied once;
/// owned ones are moved without a copy.
///
/// ```
/// # async fn demo(election: tenure_core::Election) -> tenure_core::Result<()> {
/// let node = String::from("node-a");
/// let leadership = election.campaign(&node).await?; // or `node.as_str()`, `node`
/// leadership.guarded_put("config/owner", node.as_bytes()).await?;
/// # Ok(()) }
/// ```
///
/// [`Election::campaign`]: crate::Election::campaign
/// [`Leadership::proclaim`]: crate::Leadership::proclaim
pub trait IntoValue {
    /// The value as [`Bytes`].
    fn into_value(self) -> Bytes;
}

impl IntoValue for Bytes {
    fn into_value(self) -> Bytes {
        self
    }
}

impl IntoValue for &Bytes {
    fn into_value(self) -> Bytes {
        self.clone()
    }
}

impl IntoValue for String {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for &String {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::from(self)
    }
}

impl IntoValue for &Vec<u8> {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> IntoValue for [u8; N] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(&self)
    }
}

impl<const N: usize> IntoValue for &[u8; N] {
    fn into_value(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generic caller: the shape `campaign` and `guarded_put` have.
    fn value(v: impl IntoValue) -> Bytes {
        v.into_value()
    }

    #[test]
    fn borrowed_and_owned_strings_and_bytes_convert() {
        let node = String::from("node-a");
        let borrowed: &str = &node;
        let bytes = node.clone().into_bytes();
        let expected = Bytes::from_static(b"node-a");
        assert_eq!(value(borrowed), expected);
        assert_eq!(value(&node), expected);
        assert_eq!(value(node.clone()), expected);
        assert_eq!(value(bytes.as_slice()), expected);
        assert_eq!(value(&bytes), expected);
        assert_eq!(value(bytes.clone()), expected);
        assert_eq!(value(*b"node-a"), expected);
        assert_eq!(value(b"node-a"), expected);
        assert_eq!(value(&expected), expected);
        assert_eq!(value(expected.clone()), expected);
    }
}
