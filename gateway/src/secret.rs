//! Secret material as the gateway holds it: the key file's IKMs, the
//! replica seed, store passwords. Each is wiped from memory when dropped
//! (`zeroize`) and prints as `<redacted>` through `Debug`, so that a
//! `?value` in a log line can never write the seed that derives every key.
//! Fresh secrets come from the operating system's generator, which is safe
//! across `fork` and VM snapshots.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// 32 secret bytes as 64 hex digits, the form the key and seed files use.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHex(Zeroizing<String>);

impl SecretHex {
    /// 32 fresh random bytes from the operating system.
    pub fn random() -> Result<Self> {
        let bytes = random_bytes()?;
        Ok(Self::encode(&bytes))
    }

    /// `bytes` in hex.
    pub fn encode(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(hex::encode(bytes)))
    }

    /// The 32 bytes, if the text is 64 hex digits.
    pub fn decode(&self) -> Option<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(self.0.as_bytes(), &mut out[..]).ok()?;
        Some(out)
    }
}

impl From<&str> for SecretHex {
    fn from(s: &str) -> Self {
        Self(Zeroizing::new(s.to_owned()))
    }
}

impl fmt::Debug for SecretHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretHex {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(Zeroizing::new(s)))
    }
}

/// A password read from a file: wiped when dropped, redacted in `Debug`.
#[derive(Clone)]
pub struct Password(pub(crate) Zeroizing<String>);

impl Password {
    /// The password's text, to hand to the store's client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// 32 fresh random bytes from the operating system's generator.
pub fn random_bytes() -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut out[..]).map_err(|_| Error::Internal)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretHex::encode(&[0xab; 32]);
        let p = Password(Zeroizing::new("hunter2".into()));
        let shown = format!("{s:?} {p:?} {:?}", vec![s.clone()]);
        assert!(
            !shown.contains("abab") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(s.decode().as_deref(), Some(&[0xab; 32]));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SecretHex>(&json).unwrap(), s);
        assert_ne!(SecretHex::random().unwrap(), SecretHex::random().unwrap());
    }
}
