//! The demo client: forwards workload requests to the primary.

use std::collections::BTreeMap;

use crate::demo::{DemoMsg, DemoReply, DemoRequest};
use crate::msg::{ClientReply, ClientRequest, Msg};
use crate::node::{Ctx, Input, Node, NodeId, ReqId};

/// A demo client node.
pub struct DemoClient {
    primary: NodeId,
    timeout_ms: u64,
    /// Requests in flight: id -> whether it is a write.
    in_flight: BTreeMap<ReqId, bool>,
}

impl DemoClient {
    /// A client talking to `primary`, giving up on a request after `timeout_ms`.
    pub fn new(primary: NodeId, timeout_ms: u64) -> DemoClient {
        DemoClient {
            primary,
            timeout_ms,
            in_flight: BTreeMap::new(),
        }
    }

    fn finish(&mut self, id: ReqId, reply: DemoReply, cx: &mut Ctx<'_>) {
        if self.in_flight.remove(&id).is_some() {
            cx.cancel_timer(id);
            cx.reply(id, ClientReply::Demo(reply));
        }
    }

    fn unknown_or_fail(is_write: bool, why: &str) -> DemoReply {
        if is_write {
            DemoReply::Unknown(why.into())
        } else {
            DemoReply::Fail(why.into())
        }
    }
}

impl Node for DemoClient {
    fn step(&mut self, input: Input, cx: &mut Ctx<'_>) {
        match input {
            Input::Client {
                id,
                req: ClientRequest::Demo(req),
            } => {
                let (msg, is_write) = match req {
                    DemoRequest::Write(value) => (DemoMsg::Write { req: id, value }, true),
                    DemoRequest::Read => (DemoMsg::Read { req: id }, false),
                };
                self.in_flight.insert(id, is_write);
                cx.set_timer_ms(id, self.timeout_ms);
                cx.send(self.primary, Msg::Demo(msg));
            }
            Input::Message {
                msg: Msg::Demo(m), ..
            } => match m {
                DemoMsg::WriteOk { req } => self.finish(req, DemoReply::WriteOk, cx),
                DemoMsg::ReadOk { req, value } => self.finish(req, DemoReply::ReadOk(value), cx),
                _ => {}
            },
            Input::Timer { timer } => {
                if let Some(&w) = self.in_flight.get(&timer) {
                    self.finish(timer, Self::unknown_or_fail(w, "timeout"), cx);
                }
            }
            Input::ConnLost { peer } if peer == self.primary => {
                let ids: Vec<(ReqId, bool)> =
                    self.in_flight.iter().map(|(k, v)| (*k, *v)).collect();
                for (id, w) in ids {
                    self.finish(id, Self::unknown_or_fail(w, "connection lost"), cx);
                }
            }
            _ => {}
        }
    }
}
