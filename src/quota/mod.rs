//! Client quotas (Kafka's `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`):
//! this module owns their enforcement. The configurations live in the cluster metadata
//! (`metadata::security`, changed by AlterClientQuotas); each shard keeps its own index of
//! them (retaken once per metadata change) and its own sensors, in [`ShardQuotas`], and
//! everything here runs on the shard thread serving the request: no lock, no atomic beyond
//! the metadata version the shard already reads, nothing shared between cores.
//!
//! Enforcement is per shard. Kafka enforces a quota per broker, and each Sluice shard is a
//! Kafka broker (its own broker id and port), so a client talking to three shards may use
//! the quota three times, as a Kafka client talking to three brokers may.
//!
//! What is measured, as in Kafka: a produce's request bytes, a consumer fetch's response
//! bytes (follower fetches are replication, which has its own throttle), and for
//! `request_percentage` the handler's time on the shard thread (`clock.rs`) as a percentage
//! of one thread. Rates and throttle times follow Kafka's `ClientQuotaManager` (`rate.rs`);
//! which quota applies follows Kafka's precedence (`resolve.rs`). A throttled client gets
//! its `throttle_time_ms` in the response, which is sent at once, and its connection is then
//! muted (no next request read) for that long (KIP-219); a throttled fetch is answered
//! empty, as Kafka does, so the data it would have carried is not counted.

pub mod clock;
pub mod entity;
pub mod rate;
pub mod resolve;
pub mod throttle_field;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use entity::QuotaKey;
use rate::{Rate, WindowConfig};
use resolve::QuotaIndex;

/// A sensor unused this long is dropped (Kafka expires quota sensors after an hour).
const SENSOR_EXPIRY_MS: u64 = 3_600_000;
/// How often idle sensors are looked for.
const SWEEP_EVERY_MS: u64 = 60_000;

/// The quota types a shard meters; the index into a sensor's rates.
#[derive(Debug, Clone, Copy)]
enum Metered {
    Produce = 0,
    Fetch = 1,
    Request = 2,
}

impl Metered {
    fn key(self) -> QuotaKey {
        match self {
            Self::Produce => QuotaKey::ProducerByteRate,
            Self::Fetch => QuotaKey::ConsumerByteRate,
            Self::Request => QuotaKey::RequestPercentage,
        }
    }
}

/// The rates of one (user tag, client-id tag), one per quota type.
#[derive(Debug, Default)]
struct Sensors {
    rates: [Rate; 3],
    last_used_ms: u64,
}

/// One shard's quota state (see the module doc): its index of the configurations and its
/// sensors, by user tag then client-id tag, so a lookup borrows the names.
pub struct ShardQuotas {
    window: WindowConfig,
    origin: Instant,
    index: RefCell<(u64, Rc<QuotaIndex>)>,
    sensors: RefCell<HashMap<String, HashMap<String, Sensors>>>,
    last_sweep_ms: Cell<u64>,
}

impl ShardQuotas {
    /// No sensors yet; rates over `window`.
    #[must_use]
    pub fn new(window: WindowConfig) -> Self {
        Self {
            window,
            origin: Instant::now(),
            // Version 0 is never current once the metadata has loaded, so the first use
            // builds the index.
            index: RefCell::new((u64::MAX, Rc::new(QuotaIndex::default()))),
            sensors: RefCell::new(HashMap::new()),
            last_sweep_ms: Cell::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The shard's index of the configurations, retaken if the metadata changed.
    fn index(&self, shard: &Shard) -> Rc<QuotaIndex> {
        let version = shard.cluster.version();
        if self.index.borrow().0 != version {
            let index = QuotaIndex::of(&shard.cluster.security().quotas);
            *self.index.borrow_mut() = (version, Rc::new(index));
        }
        Rc::clone(&self.index.borrow().1)
    }

    /// Records `value` for the request's quota of type `metered`, if one applies, and
    /// answers the throttle time it calls for (0 when none applies or within it).
    fn record(
        &self,
        index: &QuotaIndex,
        ctx: &RequestContext,
        metered: Metered,
        value: f64,
    ) -> u64 {
        let Some(quota) = index.resolve(user_of(ctx), &ctx.client_id, metered.key()) else {
            return 0;
        };
        let now = self.now_ms();
        self.sweep(now);
        let mut sensors = self.sensors.borrow_mut();
        let sensor = sensor(&mut sensors, quota.user_tag, quota.client_tag);
        sensor.last_used_ms = now;
        let rate = &mut sensor.rates[metered as usize];
        let throttle = rate::record_and_throttle(rate, self.window, value, quota.bound, now);
        match metered {
            // Kafka bounds the request-time throttle by one window (ClientRequestQuotaManager).
            Metered::Request => throttle.min(self.window.window_ms),
            Metered::Produce | Metered::Fetch => throttle,
        }
    }

    /// Takes back a recorded value (Kafka's `unrecordQuotaSensor`, for a throttled fetch
    /// answered empty).
    fn unrecord(&self, index: &QuotaIndex, ctx: &RequestContext, metered: Metered, value: f64) {
        if let Some(quota) = index.resolve(user_of(ctx), &ctx.client_id, metered.key()) {
            let now = self.now_ms();
            let mut sensors = self.sensors.borrow_mut();
            let sensor = sensor(&mut sensors, quota.user_tag, quota.client_tag);
            sensor.rates[metered as usize].record(self.window, -value, now);
        }
    }

    /// Drops sensors idle for an hour, at most once a minute.
    fn sweep(&self, now: u64) {
        if now.saturating_sub(self.last_sweep_ms.get()) < SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms.set(now);
        let mut sensors = self.sensors.borrow_mut();
        for clients in sensors.values_mut() {
            clients.retain(|_, s| now.saturating_sub(s.last_used_ms) < SENSOR_EXPIRY_MS);
        }
        sensors.retain(|_, clients| !clients.is_empty());
    }

    /// Records the request's handler time so far; the throttle `request_percentage` calls for.
    fn request_time(&self, index: &QuotaIndex, ctx: &RequestContext) -> u64 {
        // Kafka records percent-seconds: a rate of them is a percentage of one thread.
        let percent_seconds = ctx.clock.spent().as_secs_f64() * 100.0;
        self.record(index, ctx, Metered::Request, percent_seconds)
    }
}

fn sensor<'a>(
    sensors: &'a mut HashMap<String, HashMap<String, Sensors>>,
    user_tag: &str,
    client_tag: &str,
) -> &'a mut Sensors {
    // Look up by borrowed names first: a new sensor is the rare case.
    if !sensors
        .get(user_tag)
        .is_some_and(|c| c.contains_key(client_tag))
    {
        sensors
            .entry(user_tag.to_owned())
            .or_default()
            .insert(client_tag.to_owned(), Sensors::default());
    }
    sensors
        .get_mut(user_tag)
        .and_then(|c| c.get_mut(client_tag))
        .expect("inserted above")
}

/// The user a quota is looked up by: the principal's name after `User:` (`ANONYMOUS` on a
/// connection without authentication, which is what Kafka's quotas see too).
#[must_use]
pub fn user_of(ctx: &RequestContext) -> &str {
    ctx.principal
        .strip_prefix("User:")
        .unwrap_or(&ctx.principal)
}

fn millis(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// For every API but Produce and Fetch: records the handler time against
/// `request_percentage`; answers the response's `throttle_time_ms` and notes the mute.
pub fn request(shard: &Shard, ctx: &RequestContext) -> i32 {
    let index = shard.quotas.index(shard);
    if index.is_empty() {
        return 0;
    }
    let throttle = shard.quotas.request_time(&index, ctx);
    ctx.clock.throttle(Duration::from_millis(throttle));
    millis(throttle)
}

/// Whether any client quota is configured (handlers are timed only then).
pub fn any_configured(shard: &Shard) -> bool {
    !shard.quotas.index(shard).is_empty()
}

/// For a Produce of `request_bytes`: records them against `producer_byte_rate` and the
/// handler time against `request_percentage`; answers the larger throttle (the response's
/// `throttle_time_ms`) and notes the mute.
pub fn produce(shard: &Shard, ctx: &RequestContext, request_bytes: usize) -> i32 {
    let index = shard.quotas.index(shard);
    if index.is_empty() {
        return 0;
    }
    let quotas = &shard.quotas;
    let bandwidth = quotas.record(&index, ctx, Metered::Produce, request_bytes as f64);
    let throttle = bandwidth.max(quotas.request_time(&index, ctx));
    ctx.clock.throttle(Duration::from_millis(throttle));
    millis(throttle)
}

/// For a consumer Fetch whose response is `response_bytes` long: records them against
/// `consumer_byte_rate` and the handler time against `request_percentage`; answers the
/// larger throttle and notes the mute. A throttled fetch is answered empty (Kafka's rule),
/// so its bytes are taken back off the rate.
pub fn fetch(shard: &Shard, ctx: &RequestContext, response_bytes: u64) -> i32 {
    let index = shard.quotas.index(shard);
    if index.is_empty() {
        return 0;
    }
    let quotas = &shard.quotas;
    let bytes = response_bytes as f64;
    let bandwidth = quotas.record(&index, ctx, Metered::Fetch, bytes);
    let throttle = bandwidth.max(quotas.request_time(&index, ctx));
    if throttle > 0 {
        quotas.unrecord(&index, ctx, Metered::Fetch, bytes);
    }
    ctx.clock.throttle(Duration::from_millis(throttle));
    millis(throttle)
}

/// Holds the connection for `throttle` after a throttled response (KIP-219: the broker
/// stops reading the client's requests while the client backs off). Returns early when the
/// shard shuts down.
pub async fn mute(shard: &Shard, throttle: Duration) {
    if throttle.is_zero() {
        return;
    }
    let stopping = shard.shutdown_event.generation();
    futures_lite::future::or(
        glommio::timer::sleep(throttle),
        shard.shutdown_event.changed_since(stopping),
    )
    .await;
}
