//! Wire formats with no I/O: the bounds check in front of the request decoders, the
//! RecordBatch v2 view, varints and the one bounds-checked byte reader, record decoding and
//! compression codecs, the hand-framed fetch response, and SCRAM's messages.
//! Runs on every shard.

pub mod batch_validation;
pub mod byte_reader;
pub mod compression;
pub mod control_batch;
pub mod fetch_response;
pub mod record_batch;
pub mod records;
pub mod request_shapes;
pub mod scram;
pub mod varint;
