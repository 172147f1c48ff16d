//! Everything the simulated Telegram remembers: chats and their messages, files, the update
//! queue, what the bot sent, open queries and charges.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::faults::FaultBook;
use super::files::FileStore;
use super::model::{SentCall, SentFile, SimUser, Stats};

/// A private chat: the user's name, and every message in it, the bot's and the user's,
/// numbered by one counter as in Telegram.
#[derive(Debug)]
pub(crate) struct ChatRecord {
    /// The user on the other side, as last seen.
    pub user: SimUser,
    next_message_id: i32,
    pub messages: BTreeMap<i32, StoredMessage>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    /// The Message object as the Bot API returns it, kept current by edits.
    pub json: Value,
    pub from_bot: bool,
    pub invoice: Option<InvoiceRecord>,
}

/// What a payment of an invoice message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceRecord {
    pub currency: String,
    pub total_amount: i64,
    pub payload: String,
}

#[derive(Debug)]
pub(crate) struct CallbackRecord {
    pub chat_id: i64,
    pub answered: bool,
}

#[derive(Debug)]
pub(crate) struct PreCheckoutRecord {
    pub user_id: i64,
    pub pushed: Instant,
    /// `(ok, error_message)` once the bot answered.
    pub answer: Option<(bool, Option<String>)>,
}

#[derive(Debug)]
pub(crate) struct ChargeRecord {
    pub user_id: i64,
    pub currency: String,
    pub total_amount: i64,
    pub payload: String,
    pub refunded: bool,
}

pub(crate) struct SimState {
    pub chats: HashMap<i64, ChatRecord>,
    pub files: FileStore,
    updates: VecDeque<(i64, Value)>,
    next_update_id: i64,
    pub sent: Vec<SentCall>,
    pub faults: FaultBook,
    pub callbacks: HashMap<String, CallbackRecord>,
    pub pre_checkouts: HashMap<String, PreCheckoutRecord>,
    pub charges: HashMap<String, ChargeRecord>,
    /// Bot commands by `scope|language_code`.
    pub commands: HashMap<String, Value>,
    pub webhook_url: String,
    /// Bumped by each getUpdates; an older long poll that sees a newer one ends with 409.
    pub poll_generation: u64,
    pub stopping: bool,
    pub stats: Stats,
    counter: u64,
}

impl Default for SimState {
    fn default() -> Self {
        SimState {
            chats: HashMap::new(),
            files: FileStore::default(),
            updates: VecDeque::new(),
            // Telegram's ids are large and not 1-based; bots must not assume otherwise.
            next_update_id: 100_000_001,
            sent: Vec::new(),
            faults: FaultBook::default(),
            callbacks: HashMap::new(),
            pre_checkouts: HashMap::new(),
            charges: HashMap::new(),
            commands: HashMap::new(),
            webhook_url: String::new(),
            poll_generation: 0,
            stopping: false,
            stats: Stats::default(),
            counter: 0,
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn user_json(u: &SimUser) -> Value {
    let mut v = json!({"id": u.id, "is_bot": false, "first_name": u.first_name});
    if let Some(n) = &u.username {
        v["username"] = json!(n);
    }
    if let Some(l) = &u.language_code {
        v["language_code"] = json!(l);
    }
    v
}

impl SimState {
    /// A fresh numeric id, as Telegram's callback and pre-checkout query ids are.
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}", 4_000_000_000_000_000_000u64 + self.counter)
    }

    /// Learns (or refreshes) the user behind a private chat.
    pub fn remember_user(&mut self, u: &SimUser) {
        self.chat_mut(u.id).user = u.clone();
    }

    /// The chat, created on first use: the bot may write to a chat before the sim saw it.
    pub fn chat_mut(&mut self, chat_id: i64) -> &mut ChatRecord {
        self.chats.entry(chat_id).or_insert_with(|| ChatRecord {
            user: SimUser::new(chat_id, format!("User {chat_id}")),
            next_message_id: 1,
            messages: BTreeMap::new(),
        })
    }

    pub fn chat_json(&mut self, chat_id: i64) -> Value {
        let user = &self.chat_mut(chat_id).user;
        let mut v = json!({"id": chat_id, "type": "private", "first_name": user.first_name});
        if let Some(n) = &user.username {
            v["username"] = json!(n);
        }
        v
    }

    /// Adds a message to a chat: `content` holds the fields after the common header
    /// (`text`, `photo`, `invoice`...). Returns the full Message object.
    pub fn add_message(
        &mut self,
        chat_id: i64,
        from: Value,
        from_bot: bool,
        content: Map<String, Value>,
        invoice: Option<InvoiceRecord>,
    ) -> Value {
        let chat = self.chat_json(chat_id);
        let record = self.chat_mut(chat_id);
        let id = record.next_message_id;
        record.next_message_id += 1;
        let mut msg = Map::new();
        msg.insert("message_id".into(), json!(id));
        msg.insert("from".into(), from);
        msg.insert("chat".into(), chat);
        msg.insert("date".into(), json!(now_unix()));
        msg.extend(content);
        let json = Value::Object(msg);
        record.messages.insert(
            id,
            StoredMessage {
                json: json.clone(),
                from_bot,
                invoice,
            },
        );
        json
    }

    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<&StoredMessage> {
        self.chats.get(&chat_id)?.messages.get(&message_id)
    }

    pub fn message_mut(&mut self, chat_id: i64, message_id: i32) -> Option<&mut StoredMessage> {
        self.chats.get_mut(&chat_id)?.messages.get_mut(&message_id)
    }

    /// Queues an update (`kind` is its field: `message`, `callback_query`...).
    pub fn enqueue(&mut self, kind: &str, body: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let mut update = Map::new();
        update.insert("update_id".into(), json!(id));
        update.insert(kind.into(), body);
        self.updates.push_back((id, Value::Object(update)));
        self.stats.updates_pushed += 1;
        id
    }

    /// getUpdates' `offset`: updates below it are confirmed and forgotten; a negative one
    /// keeps only the last `-offset` updates.
    pub fn confirm(&mut self, offset: i64) {
        let before = self.updates.len();
        if offset > 0 {
            while self.updates.front().is_some_and(|(id, _)| *id < offset) {
                self.updates.pop_front();
            }
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.updates.len() > keep {
                self.updates.pop_front();
            }
        }
        self.stats.updates_confirmed += (before - self.updates.len()) as u64;
    }

    pub fn pending(&self, limit: usize) -> Vec<Value> {
        self.updates
            .iter()
            .take(limit)
            .map(|(_, u)| u.clone())
            .collect()
    }

    pub fn pending_count(&self) -> usize {
        self.updates.len()
    }

    pub fn drop_pending(&mut self) {
        self.updates.clear();
    }

    pub fn record(
        &mut self,
        method: &str,
        chat_id: Option<i64>,
        message_ids: Vec<i32>,
        params: Value,
        files: Vec<SentFile>,
    ) {
        let seq = self.sent.len() as u64 + 1;
        self.sent.push(SentCall {
            seq,
            method: method.to_string(),
            chat_id,
            message_ids,
            params,
            files,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_confirm_what_lies_below() {
        let mut st = SimState::default();
        let a = st.enqueue("message", json!({}));
        let b = st.enqueue("message", json!({}));
        let c = st.enqueue("message", json!({}));
        st.confirm(b);
        assert_eq!(st.pending(100).len(), 2);
        st.confirm(-1);
        assert_eq!(st.pending(100)[0]["update_id"], json!(c));
        assert_eq!(st.stats.updates_confirmed, 2);
        assert!(a < b && b < c);
    }

    #[test]
    fn users_and_bot_share_the_message_counter() {
        let mut st = SimState::default();
        st.remember_user(&SimUser::new(7, "Anna"));
        let m1 = st.add_message(7, json!({}), false, Map::new(), None);
        let m2 = st.add_message(7, json!({}), true, Map::new(), None);
        assert_eq!(
            (m1["message_id"].clone(), m2["message_id"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(
            m2["chat"],
            json!({"id": 7, "type": "private", "first_name": "Anna"})
        );
    }
}
