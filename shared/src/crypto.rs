//! Encryption of the credentials the product must keep (webhook URLs, routing keys, signing
//! secrets): AES-256-GCM under a key derived from `SECRET_KEY` for one purpose. A sealed value
//! is `v1.` followed by base64 of a random nonce and the ciphertext with its tag; the purpose
//! is bound in as associated data, so a value sealed for one use does not open for another.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1.";

/// A key for sealing and opening credentials of one purpose.
pub struct Sealer {
    key: LessSafeKey,
    purpose: &'static str,
}

/// A sealed value did not open: tampered with, sealed under another key, or not sealed.
#[derive(Debug, thiserror::Error)]
#[error("a stored credential could not be decrypted (was SECRET_KEY changed?)")]
pub struct OpenError;

impl Sealer {
    /// Derives the key for `purpose` from `SECRET_KEY`.
    pub fn new(secret_key: &str, purpose: &'static str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"certifyclouds:seal:");
        hasher.update(purpose.as_bytes());
        hasher.update(b":");
        hasher.update(secret_key.as_bytes());
        let bytes = hasher.finalize();
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).expect("a SHA-256 digest is 32 bytes");
        Self { key: LessSafeKey::new(unbound), purpose }
    }

    /// Encrypts `plaintext` under a fresh random nonce.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buffer = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(self.purpose.as_bytes()),
                &mut buffer,
            )
            .expect("AES-GCM sealing of an in-memory buffer does not fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a value made by [`Sealer::seal`] with the same key and purpose.
    pub fn open(&self, sealed: &str) -> Result<String, OpenError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(OpenError)?;
        let raw = STANDARD.decode(encoded).map_err(|_| OpenError)?;
        if raw.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.purpose.as_bytes()), &mut buffer)
            .map_err(|_| OpenError)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-secret-key-long-enough-for-the-tests-0123";

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_purpose_only() {
        let sealer = Sealer::new(KEY, "alert-channel");
        let sealed =
            sealer.seal("https://hooks.example.test/services/T0A1B2C3/B4D5E6F7/k8Jq2mZr0pWs");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("hooks.example.test"));
        assert_eq!(
            sealer.open(&sealed).unwrap(),
            "https://hooks.example.test/services/T0A1B2C3/B4D5E6F7/k8Jq2mZr0pWs"
        );
        // A fresh nonce each time: sealing twice gives different text.
        assert_ne!(sealer.seal("same"), sealer.seal("same"));

        assert!(Sealer::new(KEY, "another-purpose").open(&sealed).is_err());
        assert!(
            Sealer::new("another-secret-key-long-enough-0123456789", "alert-channel")
                .open(&sealed)
                .is_err()
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(sealer.open(&tampered).is_err());
        assert!(sealer.open("plain text").is_err());
    }
}
