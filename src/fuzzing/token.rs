//! The `token` target: upgrade-token verification on any input, and mint → verify.

use arbitrary::Unstructured;

use crate::auth::{TokenError, mint_token, peek_gateway_id, verify_token};

/// Upgrade tokens.
///
/// Invariants:
/// - `verify_token` and `peek_gateway_id` never panic, whatever the token, secrets and time;
/// - a token `peek_gateway_id` accepts never fails `verify_token` for its form
///   (`BadEncoding`, `Malformed`, `BadExpiry`), and a verified token's id is the peeked one;
/// - mint → verify with the same secret at the minting time gives back the gateway id and
///   the expiry; a rotation list holding the secret after a blank one verifies too; another
///   secret is a `BadSignature`; one second past the expiry is `Expired`; an empty gateway
///   id or a blank secret never verifies.
pub fn token(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mint) = u.arbitrary::<bool>() else {
        return;
    };
    if mint {
        mint_then_verify(&mut u);
    } else {
        verify_any(u);
    }
}

fn verify_any(mut u: Unstructured<'_>) {
    let secrets: Vec<String> = u.arbitrary().unwrap_or_default();
    let now: u64 = u.arbitrary().unwrap_or_default();
    let token = String::from_utf8_lossy(u.take_rest()).into_owned();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let peeked = peek_gateway_id(&token);
    let verified = verify_token(&token, &secrets, now);
    if peeked.is_ok() {
        assert!(
            !matches!(
                verified,
                Err(TokenError::BadEncoding | TokenError::Malformed | TokenError::BadExpiry)
            ),
            "peek accepted the form, verify refused it: {verified:?}"
        );
    }
    if let Ok(v) = verified {
        assert_eq!(
            peeked,
            Ok(v.gateway_id),
            "verify and peek disagree on the id"
        );
    }
}

fn mint_then_verify(u: &mut Unstructured<'_>) {
    let gateway_id: String = u.arbitrary().unwrap_or_default();
    let secret: String = u.arbitrary().unwrap_or_default();
    let ttl: i64 = u.arbitrary().unwrap_or_default();
    let now: u64 = u.arbitrary().unwrap_or_default();
    let token = mint_token(&gateway_id, &secret, ttl, now);
    let verified = verify_token(&token, &[&secret], now);

    if gateway_id.is_empty() {
        assert_eq!(peek_gateway_id(&token), Err(TokenError::Malformed));
        assert_eq!(verified, Err(TokenError::Malformed));
        return;
    }
    assert_eq!(peek_gateway_id(&token).as_deref(), Ok(gateway_id.as_str()));
    if secret.trim().is_empty() {
        assert_eq!(verified, Err(TokenError::NoSecret));
        return;
    }
    let verified = verified.unwrap_or_else(|e| panic!("a fresh token failed: {e:?}"));
    assert_eq!(verified.gateway_id, gateway_id);
    let expires_at = (ttl > 0).then(|| now.saturating_add(ttl.unsigned_abs()));
    assert_eq!(verified.expires_at, expires_at);
    assert_eq!(
        verify_token(&token, &["  ", &secret], now).map(|v| v.gateway_id),
        Ok(gateway_id.clone()),
        "rotation list"
    );
    let other = format!("{secret}x");
    assert_eq!(
        verify_token(&token, &[&other], now),
        Err(TokenError::BadSignature)
    );
    if let Some(exp) = expires_at.filter(|&e| e < u64::MAX) {
        assert_eq!(
            verify_token(&token, &[&secret], exp + 1),
            Err(TokenError::Expired { expires_at: exp })
        );
        assert!(
            verify_token(&token, &[&secret], exp).is_ok(),
            "valid up to exp"
        );
    }
}
