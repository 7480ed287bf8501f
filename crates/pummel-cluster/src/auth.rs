//! The shared token, and the proof that a peer knows it without ever sending it.
//!
//! Each side sends a fresh random nonce; each proves it knows the token with an HMAC-SHA256 of
//! both nonces under the token, with its role first, so that one side's proof can never be
//! replayed as the other's or in another conversation.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ClusterError;

/// The environment variable an agent or coordinator reads its token from without
/// `--token-file`.
pub const TOKEN_ENV: &str = "PUMMEL_TOKEN";

/// The secret a coordinator and its agents share.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token from its text; surrounding white space (a file's last newline) is not part of it.
    pub fn new(text: &str) -> Result<Token, ClusterError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ClusterError::Token("the token is empty".into()));
        }
        Ok(Token(text.as_bytes().to_vec()))
    }

    /// The token in `path` (`--token-file`), or else in [`TOKEN_ENV`].
    pub fn load(path: Option<&std::path::Path>) -> Result<Token, ClusterError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ClusterError::Token(format!("cannot read the token file {}: {e}", path.display())))?;
                Token::new(&text)
            }
            None => match std::env::var(TOKEN_ENV) {
                Ok(text) => Token::new(&text),
                Err(_) => Err(ClusterError::Token(format!(
                    "no token: give --token-file FILE or set {TOKEN_ENV} (the same on the coordinator and every agent)"
                ))),
            },
        }
    }

    /// A fresh random token (the coordinator of `--workers`, which starts its own agents).
    pub fn random() -> Token {
        Token(nonce().into_bytes())
    }

    /// The token's text, to hand to agents this process starts itself.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// `role`'s proof over the two nonces, hex.
    pub fn proof(&self, role: Role, first: &str, second: &str) -> String {
        hex::encode(self.mac(role, first, second).finalize().into_bytes())
    }

    /// True when `proof` is `role`'s proof over the nonces (compared in constant time).
    pub fn verify(&self, role: Role, first: &str, second: &str, proof: &str) -> bool {
        let Ok(bytes) = hex::decode(proof) else { return false };
        self.mac(role, first, second).verify_slice(&bytes).is_ok()
    }

    /// The HMAC of `role` and both nonces under the token, each field ended by a 0 byte.
    fn mac(&self, role: Role, first: &str, second: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for field in [role.label(), first.as_bytes(), second.as_bytes()] {
            mac.update(field);
            mac.update(b"\0");
        }
        mac
    }
}

/// Who proves.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// The coordinator: its proof is over (agent's nonce, coordinator's nonce).
    Coordinator,
    /// An agent: its proof is over (coordinator's nonce, agent's nonce).
    Agent,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Coordinator => b"pummel coordinator",
            Role::Agent => b"pummel agent",
        }
    }
}

/// A fresh random nonce, hex (128 bits).
pub fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_with_the_same_token_role_and_nonces() {
        let token = Token::new("s3cret\n").unwrap();
        let proof = token.proof(Role::Agent, "a", "b");
        assert!(token.verify(Role::Agent, "a", "b", &proof));
        assert!(!token.verify(Role::Coordinator, "a", "b", &proof), "one role's proof is not the other's");
        assert!(!token.verify(Role::Agent, "b", "a", &proof));
        assert!(!Token::new("other").unwrap().verify(Role::Agent, "a", "b", &proof));
        assert!(!token.verify(Role::Agent, "a", "b", "zz"));
    }

    #[test]
    fn an_empty_token_is_refused_and_the_token_never_prints() {
        assert!(Token::new(" \n").is_err());
        assert_eq!(format!("{:?}", Token::new("s3cret").unwrap()), "Token(..)");
    }
}
