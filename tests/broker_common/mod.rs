//! Broker settings of the consumer-group and transaction integration tests, on top of the
//! shared harness in `tests/common`: two shards (so groups and transactions span cores), a
//! quick first rebalance, small internal topics and a short maximum transaction timeout.

#![allow(dead_code)]

use crate::common::{Broker, BrokerOptions};

/// Cores (shards) the test broker runs: two, so groups and transactions span shards.
pub const CORES: u16 = 2;

/// Starts a broker with the group and transaction test settings.
pub fn start() -> Broker {
    start_with(&[])
}

/// Starts a broker with the group and transaction test settings plus `extra` broker keys.
pub fn start_with(extra: &[(&str, &str)]) -> Broker {
    let mut options = BrokerOptions::default()
        .with_cores(CORES)
        .with_config("group.initial.rebalance.delay.ms", "100")
        .with_config("offsets.topic.num.partitions", "10")
        .with_config("transaction.state.log.num.partitions", "10")
        .with_config("transaction.max.timeout.ms", "60000");
    for (key, value) in extra {
        options = options.with_config(key, value);
    }
    Broker::start_with(options)
}

/// Creates a topic with `partitions` partitions through librdkafka's admin API.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results =
        futures_lite::future::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            .expect("create_topics request");
    for result in results {
        result.expect("topic created");
    }
}
