// Console workflow with kafkajs (npm, a pure-JavaScript client): admin, produce, group consume,
// offsets. Prints one `kafkajs.<step>\t<PASS|FAIL>\t<detail>` line per step on stdout.
//
//   NODE_PATH=.../node_modules node tests/compat/kafkajs.js HOST:PORT
"use strict";
const { Kafka, logLevel, CompressionTypes } = require("kafkajs");

const broker = process.argv[2];
const kafka = new Kafka({
  clientId: "sluice-compat",
  brokers: [broker],
  logLevel: logLevel.ERROR,
  // Fail fast: the harness must not hang on a broker that stops answering.
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 3 },
});
const suffix = `${process.pid}-${Date.now()}`;
const topic = `compat-kafkajs-${suffix}`;
const groupId = `compat-kafkajs-group-${suffix}`;

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Runs one step with a time limit; a failure is reported and the remaining steps still run.
async function step(name, fn, timeoutMs = 30000) {
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    console.log(`kafkajs.${name}\tPASS\t`);
  } catch (e) {
    console.log(`kafkajs.${name}\tFAIL\t${String(e && e.message).replace(/\s+/g, " ")}`);
    console.error(`--- kafkajs.${name}`, e);
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });

  await step("admin-connect", () => admin.connect());
  await step("describe-cluster", async () => {
    const c = await admin.describeCluster();
    assert(c.brokers.length >= 2, `want >= 2 brokers, got ${JSON.stringify(c.brokers)}`);
    assert(c.controller !== null && c.controller !== undefined, "no controller");
  });
  await step("create-topic", async () => {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    assert(created === true, `createTopics returned ${created}`);
  });
  await step("list-topics", async () => {
    const topics = await admin.listTopics();
    assert(topics.includes(topic), `${topic} not in ${topics}`);
  });
  await step("topic-metadata", async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    assert(md.topics[0].partitions.length === 3, JSON.stringify(md));
  });

  await step("produce", async () => {
    await producer.connect();
    const messages = [];
    for (let i = 0; i < 30; i++) {
      messages.push({ key: `k${i}`, value: `v${i}`, headers: { n: String(i) } });
    }
    const res = await producer.send({ topic, messages, acks: -1 });
    assert(res.every((r) => r.errorCode === 0), JSON.stringify(res));
  });
  await step("produce-gzip", async () => {
    const res = await producer.send({
      topic,
      compression: CompressionTypes.GZIP,
      messages: [{ key: "gz", value: "compressed" }],
    });
    assert(res.every((r) => r.errorCode === 0), JSON.stringify(res));
  });
  await step("fetch-topic-offsets", async () => {
    const offs = await admin.fetchTopicOffsets(topic);
    const total = offs.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    assert(total === 31, `want 31 records, offsets ${JSON.stringify(offs)}`);
  });

  await step(
    "group-consume",
    async () => {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen = new Map();
      await new Promise((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              seen.set(message.key.toString(), message);
              if (seen.size === 31) resolve();
            },
          })
          .catch(reject);
      });
      const m = seen.get("k7");
      assert(m.value.toString() === "v7", "wrong value for k7");
      assert(m.headers.n.toString() === "7", "wrong header for k7");
      assert(seen.get("gz").value.toString() === "compressed", "wrong gzip value");
    },
    60000,
  );
  await step("commit-and-fetch-offsets", async () => {
    // Auto-commit runs on the consumer's schedule; stopping the consumer commits what it read.
    await consumer.stop();
    await consumer.disconnect();
    const offs = await admin.fetchOffsets({ groupId, topics: [topic] });
    const total = offs[0].partitions.reduce((n, p) => n + Number(p.offset), 0);
    assert(total === 31, `committed offsets ${JSON.stringify(offs)}`);
  });
  await step("describe-group", async () => {
    const d = await admin.describeGroups([groupId]);
    assert(d.groups[0].groupId === groupId, JSON.stringify(d));
    assert(d.groups[0].errorCode === 0, JSON.stringify(d));
  });
  await step("list-groups", async () => {
    const g = await admin.listGroups();
    assert(g.groups.some((x) => x.groupId === groupId), JSON.stringify(g));
  });
  await step("delete-topic", async () => {
    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    const topics = await admin.listTopics();
    assert(!topics.includes(topic), "topic still listed after delete");
  });

  await producer.disconnect().catch(() => {});
  await admin.disconnect().catch(() => {});
}

main()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
