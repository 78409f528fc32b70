//! The connector example's buffers, one per gateway instance: in memory (the default),
//! durable in an SQLite file (`--store PATH`) or in Redis streams shared by a fleet of
//! connectors (`--store redis://HOST:PORT/`). Whichever it is, it runs on one store thread
//! fed by a channel, so the smol loop never waits on it and operations apply in the order
//! they were issued: an ack issued before a load is committed before the load reads.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::mpsc;

use relay_machine::connector::{Delivery, DeliveryStore, MemoryStore};
use relay_machine::wire::{BufferId, MessageEvent, PassthroughForward};

/// Every instance's buffer, as the store thread sees it. The promises are
/// [`DeliveryStore`]'s, per instance; an `Err` means the store can no longer keep them.
pub trait Backend {
    /// Marks `instance` seeded and appends `deliveries`, all or nothing; `None` (and nothing
    /// appended) when it was seeded before, by this process or an earlier one.
    fn seed(
        &mut self,
        instance: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<Option<Vec<BufferId>>, String>;
    /// Persists one delivery; its id is never used again in `instance`.
    fn append(&mut self, instance: &str, delivery: Delivery) -> Result<BufferId, String>;
    /// Up to `limit` unacked deliveries after `after`, in append order.
    fn unacked_after(
        &mut self,
        instance: &str,
        after: Option<&BufferId>,
        limit: usize,
    ) -> Result<Vec<(BufferId, Delivery)>, String>;
    /// Makes the ack durable; `false` if `id` was unknown or acked already.
    fn ack(&mut self, instance: &str, id: &BufferId) -> Result<bool, String>;
    /// How many deliveries of `instance` are not acked.
    fn unacked_len(&mut self, instance: &str) -> Result<usize, String>;
}

/// Opens the store `--store` names: none for memory, a `redis://` URL, else an SQLite
/// file.
pub fn open(spec: Option<&str>) -> Result<Box<dyn Backend + Send>, String> {
    match spec {
        None => Ok(Box::new(Memory::default())),
        Some(url) if url.starts_with("redis://") => Ok(Box::new(Redis::open(url)?)),
        Some(path) => Ok(Box::new(Sqlite::open(path)?)),
    }
}

type Job = Box<dyn FnOnce(&mut dyn Backend) -> Result<(), String> + Send>;

/// The handle on the store thread; clones share it.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl Store {
    /// Starts the store thread. A store error ends the process (exit 74, after a
    /// `store_error` line): the instances' state in memory would no longer match the
    /// store, and a restarted connector replays from what the store holds.
    pub fn start(mut backend: Box<dyn Backend + Send>) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for job in queue {
                if let Err(e) = job(backend.as_mut()) {
                    println!(
                        "{}",
                        serde_json::json!({ "event": "store_error", "error": e })
                    );
                    std::process::exit(74);
                }
            }
        });
        Self { jobs }
    }

    /// Queues `job` now (so its place in the order is the caller's) and resolves to its
    /// result; `None` only if the store thread is gone.
    pub fn call<R, F>(&self, job: F) -> impl Future<Output = Option<R>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> Result<R, String> + Send + 'static,
    {
        let (reply, answer) = smol::channel::bounded(1);
        self.run(move |backend| {
            let _ = reply.try_send(job(backend)?);
            Ok(())
        });
        async move { answer.recv().await.ok() }
    }

    /// Queues `job`, whose outcome nobody awaits.
    pub fn run(&self, job: impl FnOnce(&mut dyn Backend) -> Result<(), String> + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }
}

/// The in-memory buffers: lost with the process.
#[derive(Default)]
struct Memory {
    buffers: HashMap<String, MemoryStore>,
    seeded: HashSet<String>,
}

impl Memory {
    fn buffer(&mut self, instance: &str) -> &mut MemoryStore {
        self.buffers.entry(instance.to_owned()).or_default()
    }
}

impl Backend for Memory {
    fn seed(
        &mut self,
        instance: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<Option<Vec<BufferId>>, String> {
        if !self.seeded.insert(instance.to_owned()) {
            return Ok(None);
        }
        let buffer = self.buffer(instance);
        Ok(Some(
            deliveries.into_iter().map(|d| buffer.append(d)).collect(),
        ))
    }

    fn append(&mut self, instance: &str, delivery: Delivery) -> Result<BufferId, String> {
        Ok(self.buffer(instance).append(delivery))
    }

    fn unacked_after(
        &mut self,
        instance: &str,
        after: Option<&BufferId>,
        limit: usize,
    ) -> Result<Vec<(BufferId, Delivery)>, String> {
        Ok(self.buffer(instance).unacked_after(after, limit))
    }

    fn ack(&mut self, instance: &str, id: &BufferId) -> Result<bool, String> {
        Ok(self.buffer(instance).ack(id))
    }

    fn unacked_len(&mut self, instance: &str) -> Result<usize, String> {
        Ok(self.buffer(instance).unacked_len())
    }
}

/// A delivery as stored: its kind and the JSON of its wire body.
fn encode(delivery: &Delivery) -> Result<(&'static str, String), String> {
    let (kind, body) = match delivery {
        Delivery::Inbound(event) => ("inbound", serde_json::to_string(event)),
        Delivery::Passthrough(forward) => ("passthrough", serde_json::to_string(forward)),
        other => return Err(format!("cannot store {other:?}")),
    };
    Ok((kind, body.map_err(|e| e.to_string())?))
}

fn decode(kind: &str, body: &str) -> Result<Delivery, String> {
    let delivery = match kind {
        "inbound" => serde_json::from_str::<MessageEvent>(body).map(Delivery::from),
        "passthrough" => serde_json::from_str::<PassthroughForward>(body).map(Delivery::from),
        other => return Err(format!("unknown delivery kind {other:?}")),
    };
    delivery.map_err(|e| format!("stored {kind} unreadable: {e}"))
}

/// The buffers in an SQLite file, shared by every connector process that opens it. Ids are
/// `s-<epoch>-<rowid>`: AUTOINCREMENT never hands out a rowid twice, even after deletes,
/// and the epoch (random, minted with the file) keeps a recreated file from reusing ids a
/// gateway remembers.
struct Sqlite {
    db: rusqlite::Connection,
    prefix: String,
}

fn sql(e: rusqlite::Error) -> String {
    format!("sqlite: {e}")
}

impl Sqlite {
    fn open(path: &str) -> Result<Self, String> {
        let db = rusqlite::Connection::open(path).map_err(sql)?;
        // Another connector may hold the write lock for a moment: wait for it.
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        // WAL with FULL sync: a commit survives a power cut, not only the process dying.
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS deliveries (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 instance TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 body TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS deliveries_by_instance ON deliveries (instance, id);
             CREATE TABLE IF NOT EXISTS seeded (instance TEXT PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(sql)?;
        let epoch = format!("{:08x}", crate::common::os_seed() & 0xffff_ffff);
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?1)",
            [&epoch],
        )
        .map_err(sql)?;
        let epoch: String = db
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        Ok(Self {
            db,
            prefix: format!("s-{epoch}-"),
        })
    }

    /// The rowid an id of this file names; `None` for anyone else's id.
    fn rowid(&self, id: &BufferId) -> Option<i64> {
        id.0.strip_prefix(&self.prefix)?.parse().ok()
    }

    fn insert(
        db: &rusqlite::Connection,
        prefix: &str,
        instance: &str,
        delivery: &Delivery,
    ) -> Result<BufferId, String> {
        let (kind, body) = encode(delivery)?;
        db.execute(
            "INSERT INTO deliveries (instance, kind, body) VALUES (?1, ?2, ?3)",
            [instance, kind, &body],
        )
        .map_err(sql)?;
        Ok(BufferId(
            format!("{prefix}{}", db.last_insert_rowid()).into(),
        ))
    }
}

impl Backend for Sqlite {
    fn seed(
        &mut self,
        instance: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<Option<Vec<BufferId>>, String> {
        // One transaction: a connector killed mid-seed leaves neither the marker nor a part
        // of the deliveries, and the next one seeds them all.
        let tx = self.db.transaction().map_err(sql)?;
        let fresh = tx
            .execute(
                "INSERT OR IGNORE INTO seeded (instance) VALUES (?1)",
                [instance],
            )
            .map_err(sql)?;
        if fresh == 0 {
            return Ok(None);
        }
        let ids = deliveries
            .iter()
            .map(|d| Self::insert(&tx, &self.prefix, instance, d))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(sql)?;
        Ok(Some(ids))
    }

    fn append(&mut self, instance: &str, delivery: Delivery) -> Result<BufferId, String> {
        Self::insert(&self.db, &self.prefix, instance, &delivery)
    }

    fn unacked_after(
        &mut self,
        instance: &str,
        after: Option<&BufferId>,
        limit: usize,
    ) -> Result<Vec<(BufferId, Delivery)>, String> {
        let after = after.and_then(|id| self.rowid(id)).unwrap_or(0);
        let mut query = self
            .db
            .prepare_cached(
                "SELECT id, kind, body FROM deliveries WHERE instance = ?1 AND id > ?2
                 ORDER BY id LIMIT ?3",
            )
            .map_err(sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query
            .query_map(rusqlite::params![instance, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql)?;
        rows.map(|row| {
            let (id, kind, body) = row.map_err(sql)?;
            Ok((
                BufferId(format!("{}{id}", self.prefix).into()),
                decode(&kind, &body)?,
            ))
        })
        .collect()
    }

    fn ack(&mut self, instance: &str, id: &BufferId) -> Result<bool, String> {
        let Some(rowid) = self.rowid(id) else {
            return Ok(false);
        };
        // An acked row is deleted: AUTOINCREMENT still never hands its rowid out again.
        let deleted = self
            .db
            .execute(
                "DELETE FROM deliveries WHERE instance = ?1 AND id = ?2",
                rusqlite::params![instance, rowid],
            )
            .map_err(sql)?;
        Ok(deleted == 1)
    }

    fn unacked_len(&mut self, instance: &str) -> Result<usize, String> {
        let n: i64 = self
            .db
            .query_row(
                "SELECT count(*) FROM deliveries WHERE instance = ?1",
                [instance],
                |r| r.get(0),
            )
            .map_err(sql)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// The buffers as Redis streams, `relay:buffer:<instance>`, shared by every connector of a
/// fleet. An id is the stream entry id, which Redis never hands out twice in a stream,
/// even after XDEL. An ack deletes the entry, so that `XRANGE (after + COUNT limit` is
/// exactly the unacked tail. The seeded marker is `relay:seeded:<instance>`.
struct Redis {
    db: redis::Connection,
}

/// Sets the marker and appends the deliveries (ARGV: kind, body, kind, body, ...) in one
/// step, unless the marker was there: a script runs whole or not at all.
const SEED: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX') then return false end
local ids = {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'kind', ARGV[i], 'body', ARGV[i + 1])
end
return ids
";

fn redis_error(e: redis::RedisError) -> String {
    format!("redis: {e}")
}

impl Redis {
    fn open(url: &str) -> Result<Self, String> {
        let db = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .map_err(redis_error)?;
        Ok(Self { db })
    }

    fn key(instance: &str) -> String {
        format!("relay:buffer:{instance}")
    }

    /// `id` if it can be a stream entry id (`<ms>-<seq>`); Redis refuses anything else.
    fn entry_id(id: &BufferId) -> Option<&str> {
        let (ms, seq) = id.0.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(ms) && digits(seq)).then_some(id.0.as_str())
    }
}

impl Backend for Redis {
    fn seed(
        &mut self,
        instance: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<Option<Vec<BufferId>>, String> {
        let mut script = redis::cmd("EVAL");
        script
            .arg(SEED)
            .arg(2)
            .arg(format!("relay:seeded:{instance}"))
            .arg(Self::key(instance));
        for delivery in &deliveries {
            let (kind, body) = encode(delivery)?;
            script.arg(kind).arg(body);
        }
        let ids: Option<Vec<String>> = script.query(&mut self.db).map_err(redis_error)?;
        Ok(ids.map(|ids| ids.into_iter().map(BufferId::from).collect()))
    }

    fn append(&mut self, instance: &str, delivery: Delivery) -> Result<BufferId, String> {
        let (kind, body) = encode(&delivery)?;
        let id: String = redis::cmd("XADD")
            .arg(Self::key(instance))
            .arg("*")
            .arg("kind")
            .arg(kind)
            .arg("body")
            .arg(body)
            .query(&mut self.db)
            .map_err(redis_error)?;
        Ok(BufferId(id.into()))
    }

    fn unacked_after(
        &mut self,
        instance: &str,
        after: Option<&BufferId>,
        limit: usize,
    ) -> Result<Vec<(BufferId, Delivery)>, String> {
        let start = after
            .and_then(Self::entry_id)
            .map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(Self::key(instance))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query(&mut self.db)
            .map_err(redis_error)?;
        entries
            .into_iter()
            .map(|(id, fields)| {
                let field = |name: &str| {
                    fields
                        .chunks(2)
                        .find(|pair| pair.first().is_some_and(|f| f == name))
                        .and_then(|pair| pair.get(1))
                        .ok_or(format!("entry {id} has no {name}"))
                };
                let delivery = decode(field("kind")?, field("body")?)?;
                Ok((BufferId(id.clone().into()), delivery))
            })
            .collect()
    }

    fn ack(&mut self, instance: &str, id: &BufferId) -> Result<bool, String> {
        let Some(entry) = Self::entry_id(id) else {
            return Ok(false);
        };
        let deleted: usize = redis::cmd("XDEL")
            .arg(Self::key(instance))
            .arg(entry)
            .query(&mut self.db)
            .map_err(redis_error)?;
        Ok(deleted == 1)
    }

    fn unacked_len(&mut self, instance: &str) -> Result<usize, String> {
        redis::cmd("XLEN")
            .arg(Self::key(instance))
            .query(&mut self.db)
            .map_err(redis_error)
    }
}
