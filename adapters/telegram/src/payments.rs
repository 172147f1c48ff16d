//! Telegram Stars: invoice payloads we can trust, the pre-checkout answer, crediting a
//! successful payment exactly once (by its `telegram_payment_charge_id`), and refunds.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::config::Pack;

/// Stars are the only currency for digital goods.
pub const CURRENCY: &str = "XTR";

/// What an invoice sells, to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub user_id: i64,
    pub credits: i64,
    pub stars: u32,
}

/// Why a payment is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the invoice payload is not one of ours")]
    ForeignPayload,
    #[error("the payer {payer} is not the user {user} the invoice was made for")]
    WrongPayer { payer: i64, user: i64 },
    #[error("{currency} {amount} does not match the invoice's {stars} XTR")]
    WrongAmount {
        currency: String,
        amount: u32,
        stars: u32,
    },
}

/// Signs invoice payloads (`v1:user:credits:stars:nonce:mac`, under 128 bytes), so a payload
/// that claims more credits than were paid for is refused.
#[derive(Clone)]
pub struct Invoices {
    keyed: Hmac<Sha256>,
}

impl Invoices {
    /// The key is derived from the bot token: only this bot's invoices verify.
    pub fn new(token: &str) -> Invoices {
        let mut h = Sha256::new();
        h.update(b"aisha invoice payload\0");
        h.update(token.as_bytes());
        // A key of HMAC-SHA256's block size (64 bytes): no fallible key handling.
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&h.finalize());
        Invoices {
            keyed: <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key.into()),
        }
    }

    fn mac(&self, body: &str) -> String {
        let mut m = self.keyed.clone();
        m.update(body.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..12])
    }

    pub fn payload(&self, user_id: i64, pack: Pack) -> String {
        let nonce = &ulid::Ulid::generate().to_string()[16..];
        let body = format!("v1:{user_id}:{}:{}:{nonce}", pack.credits, pack.stars);
        format!("{body}:{}", self.mac(&body))
    }

    pub fn parse(&self, payload: &str) -> Option<Order> {
        let (body, mac) = payload.rsplit_once(':')?;
        let expected = self.mac(body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            mac.as_bytes(),
        )) {
            return None;
        }
        let mut parts = body.split(':');
        if parts.next()? != "v1" {
            return None;
        }
        Some(Order {
            user_id: parts.next()?.parse().ok()?,
            credits: parts.next()?.parse().ok()?,
            stars: parts.next()?.parse().ok()?,
        })
    }

    /// Accepts a pre-checkout query or a successful payment: our payload, the payer it was
    /// made for, the amount it asked, in Stars.
    pub fn check(
        &self,
        payload: &str,
        payer: i64,
        currency: &str,
        amount: u32,
    ) -> Result<Order, Refused> {
        let order = self.parse(payload).ok_or(Refused::ForeignPayload)?;
        if order.user_id != payer {
            return Err(Refused::WrongPayer {
                payer,
                user: order.user_id,
            });
        }
        if currency != CURRENCY || amount != order.stars {
            return Err(Refused::WrongAmount {
                currency: currency.to_string(),
                amount,
                stars: order.stars,
            });
        }
        Ok(order)
    }
}

/// A payment we credited.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Payment {
    pub charge_id: String,
    pub user_id: String,
    pub credits: i64,
    pub stars: i64,
    pub refunded_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Payments {
    db: Db,
}

impl Payments {
    pub fn new(db: Db) -> Payments {
        Payments { db }
    }

    /// Records the payment; false when this charge was recorded before.
    pub async fn record(
        &self,
        charge_id: &str,
        order: &Order,
        payload: &str,
    ) -> Result<bool, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(
            "INSERT INTO tg_payments (charge_id, user_id, credits, stars, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (charge_id) DO NOTHING",
        )
        .bind(charge_id)
        .bind(order.user_id.to_string())
        .bind(order.credits)
        .bind(order.stars as i64)
        .bind(payload)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1))
    }

    pub async fn get(&self, charge_id: &str) -> Result<Option<Payment>, sqlx::Error> {
        on_db!(&self.db, p => sqlx::query_as(
            "SELECT charge_id, user_id, credits, stars, refunded_at FROM tg_payments WHERE charge_id = $1",
        )
        .bind(charge_id)
        .fetch_optional(p)
        .await)
    }

    pub async fn refunded(&self, charge_id: &str) -> Result<(), sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(
            "UPDATE tg_payments SET refunded_at = $2 WHERE charge_id = $1 AND refunded_at IS NULL",
        )
        .bind(charge_id)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_verify_only_untouched_and_for_the_payer() {
        let inv = Invoices::new("123:token");
        let pack = Pack {
            credits: 500,
            stars: 180,
        };
        let p = inv.payload(42, pack);
        assert!(p.len() <= 128, "{p}");
        assert_eq!(
            inv.check(&p, 42, "XTR", 180),
            Ok(Order {
                user_id: 42,
                credits: 500,
                stars: 180
            })
        );
        assert!(matches!(
            inv.check(&p, 43, "XTR", 180),
            Err(Refused::WrongPayer { .. })
        ));
        assert!(matches!(
            inv.check(&p, 42, "XTR", 1),
            Err(Refused::WrongAmount { .. })
        ));
        assert!(matches!(
            inv.check(&p, 42, "USD", 180),
            Err(Refused::WrongAmount { .. })
        ));
        let forged = p.replace(":500:", ":5000:");
        assert_eq!(
            inv.check(&forged, 42, "XTR", 180),
            Err(Refused::ForeignPayload)
        );
        assert_eq!(
            Invoices::new("other").check(&p, 42, "XTR", 180),
            Err(Refused::ForeignPayload)
        );
    }
}
