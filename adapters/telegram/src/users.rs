//! Bot users: language and main avatar.

use aisha_engine::time::now_ms;
use aisha_engine::{Db, on_db};

use super::lang::Lang;

#[derive(Debug, Clone)]
pub struct Users {
    db: Db,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotUser {
    pub user_id: i64,
    pub lang: Lang,
    pub main_avatar: Option<String>,
    /// First time we saw this user.
    pub new: bool,
}

impl Users {
    pub fn new(db: Db) -> Users {
        Users { db }
    }

    /// The user, recorded on first sight with the language Telegram reports.
    pub async fn seen(
        &self,
        user_id: i64,
        language_code: Option<&str>,
        first_name: &str,
    ) -> Result<BotUser, sqlx::Error> {
        let now = now_ms();
        let lang = Lang::from_code(language_code);
        let inserted = on_db!(&self.db, p => sqlx::query(
            "INSERT INTO tg_users (user_id, lang, first_name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id.to_string())
        .bind(lang.code())
        .bind(first_name)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        let mut user = self.get(user_id).await?.unwrap_or(BotUser {
            user_id,
            lang,
            main_avatar: None,
            new: true,
        });
        user.new = inserted == 1;
        Ok(user)
    }

    pub async fn get(&self, user_id: i64) -> Result<Option<BotUser>, sqlx::Error> {
        let row: Option<(String, Option<String>)> = on_db!(&self.db, p => sqlx::query_as(
            "SELECT lang, main_avatar FROM tg_users WHERE user_id = $1",
        )
        .bind(user_id.to_string())
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(lang, main_avatar)| BotUser {
            user_id,
            lang: Lang::parse(&lang).unwrap_or_default(),
            main_avatar,
            new: false,
        }))
    }

    /// The language to speak to `user_id` (Russian for users we never met).
    pub async fn lang(&self, user_id: i64) -> Result<Lang, sqlx::Error> {
        Ok(self.get(user_id).await?.map(|u| u.lang).unwrap_or_default())
    }

    pub async fn set_lang(&self, user_id: i64, lang: Lang) -> Result<(), sqlx::Error> {
        self.set(
            user_id,
            "UPDATE tg_users SET lang = $2, lang_chosen = 1, updated_at = $3 WHERE user_id = $1",
            lang.code(),
        )
        .await
    }

    pub async fn set_main_avatar(&self, user_id: i64, avatar_id: &str) -> Result<(), sqlx::Error> {
        self.set(
            user_id,
            "UPDATE tg_users SET main_avatar = $2, updated_at = $3 WHERE user_id = $1",
            avatar_id,
        )
        .await
    }

    async fn set(&self, user_id: i64, sql: &'static str, value: &str) -> Result<(), sqlx::Error> {
        on_db!(&self.db, p => sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(value)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ()))
    }
}
