//! The secrets challenges and clearances are signed with.

use std::fmt;

use ring::digest::{SHA256, digest};
use ring::hmac;

/// The shortest secret accepted: 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// One secret, ready to sign and verify.
pub(crate) struct Key {
    /// The first byte of the secret's SHA-256: which key a token names.
    pub(crate) id: u8,
    pub(crate) hmac: hmac::Key,
    /// A SipHash key for the binding hints (which binding a refused token broke).
    pub(crate) hint: [u8; 16],
}

impl Key {
    fn new(secret: &[u8]) -> Key {
        let id = digest(&SHA256, secret).as_ref()[0];
        let mut hint_input = b"rampart-hint\0".to_vec();
        hint_input.extend_from_slice(secret);
        let mut hint = [0u8; 16];
        hint.copy_from_slice(&digest(&SHA256, &hint_input).as_ref()[..16]);
        Key {
            id,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            hint,
        }
    }
}

/// The signing key and, during a rotation, the previous one, which still verifies.
pub struct Keys {
    /// The first signs; every one verifies.
    pub(crate) keys: Vec<Key>,
}

/// Why secrets were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No secret at all.
    None,
    /// More than two: one signs, one more may verify during a rotation.
    TooMany(usize),
    /// A secret shorter than [`MIN_SECRET_BYTES`] (its place, from 1).
    TooShort(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::None => write!(f, "no secret: one is needed, two during a rotation"),
            KeyError::TooMany(n) => write!(
                f,
                "{n} secrets: at most two (the new one first, the previous one while it rotates out)"
            ),
            KeyError::TooShort(i) => write!(
                f,
                "secret {i} is shorter than {MIN_SECRET_BYTES} bytes (256 bits)"
            ),
        }
    }
}

impl Keys {
    /// Keys from `secrets`: the first signs, a second (the previous one) still verifies.
    pub fn new(secrets: &[&[u8]]) -> Result<Keys, KeyError> {
        match secrets.len() {
            0 => return Err(KeyError::None),
            1 | 2 => {}
            n => return Err(KeyError::TooMany(n)),
        }
        if let Some(i) = secrets.iter().position(|s| s.len() < MIN_SECRET_BYTES) {
            return Err(KeyError::TooShort(i + 1));
        }
        Ok(Keys {
            keys: secrets.iter().map(|s| Key::new(s)).collect(),
        })
    }

    /// Keys with one secret of the system's randomness (for a configuration without a secret
    /// file: clearances then last until the process ends).
    pub fn random() -> Result<Keys, ring::error::Unspecified> {
        use ring::rand::SecureRandom as _;
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut secret)?;
        Ok(Keys {
            keys: vec![Key::new(&secret)],
        })
    }

    pub(crate) fn signing(&self) -> &Key {
        &self.keys[0]
    }

    /// The keys a token naming `id` may be signed with (two only when both secrets' ids are
    /// the same byte).
    pub(crate) fn named(&self, id: u8) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.id == id)
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("Keys")
            .field("ids", &self.keys.iter().map(|k| k.id).collect::<Vec<_>>())
            .finish()
    }
}
