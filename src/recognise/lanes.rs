//! Scheduling of recognition work that must wait for something (a Graph fetch): one *lane*
//! per chat message, at most `limit` lanes running at once.
//!
//! * Items of one lane (the `created` and `updated` notifications of one message) run one
//!   after the other, in the order they were pushed, never at the same time.
//! * Items of different lanes run concurrently, up to `limit`; a lane that finds no free slot
//!   waits its turn (first come, first served). A lane that is running keeps its slot for its
//!   next item.
//! * An item (by id: the inbox key) is taken once while it waits or runs; pushing it again is
//!   refused, so a periodic retry never starts a second handling of the same entry.
//!
//! The items themselves are run by the `start` function as tasks of a [`JoinSet`]; dropping
//! the lanes aborts them (the inbox is durable: they are handled again after a restart).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;

use tokio::task::{Id, JoinSet};

/// See the module docs. `T` is one piece of work, `F` starts it.
pub struct Lanes<T, F> {
    limit: usize,
    start: F,
    tasks: JoinSet<()>,
    /// The lane and item id of every running task.
    running: HashMap<Id, (String, String)>,
    /// Every busy lane (running, or waiting for a slot) → its items not yet started.
    queues: HashMap<String, VecDeque<(String, T)>>,
    /// Busy lanes without a running task, oldest first.
    starved: VecDeque<String>,
    /// Ids of every item waiting or running.
    members: HashSet<String>,
}

impl<T, F, Fut> Lanes<T, F>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// At most `limit` (at least 1) items run at once.
    pub fn new(limit: usize, start: F) -> Self {
        Lanes {
            limit: limit.max(1),
            start,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            queues: HashMap::new(),
            starved: VecDeque::new(),
            members: HashSet::new(),
        }
    }

    /// Whether item `id` is waiting or running.
    pub fn contains(&self, id: &str) -> bool {
        self.members.contains(id)
    }

    /// Whether `lane` has an item waiting or running (a new item of it must queue behind).
    pub fn is_busy(&self, lane: &str) -> bool {
        self.queues.contains_key(lane)
    }

    /// Items running now.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Items waiting (not running yet).
    pub fn waiting(&self) -> usize {
        self.members.len() - self.running.len()
    }

    /// Whether nothing waits or runs.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Queues `item` (id `id`) at the end of `lane`, starting it now when the lane is idle and
    /// a slot is free. False (and `item` dropped) when an item with this id is already taken.
    pub fn push(&mut self, lane: &str, id: &str, item: T) -> bool {
        if !self.members.insert(id.to_string()) {
            return false;
        }
        if let Some(queue) = self.queues.get_mut(lane) {
            queue.push_back((id.to_string(), item));
        } else if self.tasks.len() < self.limit {
            self.queues.insert(lane.to_string(), VecDeque::new());
            self.spawn(lane.to_string(), id.to_string(), item);
        } else {
            self.queues
                .insert(lane.to_string(), VecDeque::from([(id.to_string(), item)]));
            self.starved.push_back(lane.to_string());
        }
        true
    }

    /// Waits until one running item ends, then starts what may start. Returns false at once
    /// when nothing runs. Cancel safe (the only await is [`JoinSet::join_next_with_id`]).
    pub async fn join_next(&mut self) -> bool {
        let Some(result) = self.tasks.join_next_with_id().await else {
            return false;
        };
        let task = match result {
            Ok((task, ())) => task,
            Err(e) => {
                tracing::error!(error = %e, "a recognition task failed; its entry stays in the inbox");
                e.id()
            }
        };
        if let Some((lane, id)) = self.running.remove(&task) {
            self.members.remove(&id);
            self.advance(lane);
        }
        while self.tasks.len() < self.limit {
            let Some(lane) = self.starved.pop_front() else {
                break;
            };
            self.advance(lane);
        }
        true
    }

    /// Waits until nothing waits or runs.
    pub async fn drain(&mut self) {
        while self.join_next().await {}
    }

    /// Starts the next item of `lane`, or retires the lane when it has none.
    fn advance(&mut self, lane: String) {
        match self.queues.get_mut(&lane).and_then(VecDeque::pop_front) {
            Some((id, item)) => self.spawn(lane, id, item),
            None => {
                self.queues.remove(&lane);
            }
        }
    }

    fn spawn(&mut self, lane: String, id: String, item: T) {
        let task = self.tasks.spawn((self.start)(item)).id();
        self.running.insert(task, (lane, id));
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// What the items did: (lane, item id, "start" | "end"), in order.
    type Log = Arc<Mutex<Vec<(String, String, &'static str)>>>;
    /// One item: its lane, its id and how long it takes (ms).
    type Job = (String, String, u64);
    type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Lanes whose items sleep and log their start and end.
    fn lanes(limit: usize, log: &Log) -> Lanes<Job, impl FnMut(Job) -> Boxed> {
        let log = log.clone();
        Lanes::new(limit, move |(lane, id, ms): Job| -> Boxed {
            let log = log.clone();
            Box::pin(async move {
                log.lock()
                    .unwrap()
                    .push((lane.clone(), id.clone(), "start"));
                tokio::time::sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap().push((lane, id, "end"));
            })
        })
    }

    fn push(
        lanes: &mut Lanes<Job, impl FnMut(Job) -> Boxed>,
        lane: &str,
        id: &str,
        ms: u64,
    ) -> bool {
        lanes.push(lane, id, (lane.to_string(), id.to_string(), ms))
    }

    /// The most items of one lane, and of all lanes, running at the same time.
    fn overlap(log: &[(String, String, &'static str)]) -> (usize, usize) {
        let mut per_lane: HashMap<&str, usize> = HashMap::new();
        let (mut lane_max, mut all, mut all_max) = (0, 0, 0);
        for (lane, _, what) in log {
            let n = per_lane.entry(lane).or_default();
            if *what == "start" {
                *n += 1;
                all += 1;
            } else {
                *n -= 1;
                all -= 1;
            }
            lane_max = lane_max.max(*n);
            all_max = all_max.max(all);
        }
        (lane_max, all_max)
    }

    #[tokio::test]
    async fn one_lane_runs_in_order_and_never_twice_at_once() {
        let log = Log::default();
        let mut lanes = lanes(8, &log);
        for (id, ms) in [("created", 30), ("updated", 10), ("updated-2", 20)] {
            assert!(push(&mut lanes, "chat/1", id, ms));
        }
        assert!(lanes.is_busy("chat/1"));
        assert_eq!((lanes.running(), lanes.waiting()), (1, 2));
        lanes.drain().await;
        let log = log.lock().unwrap().clone();
        let order: Vec<&str> = log
            .iter()
            .filter(|e| e.2 == "start")
            .map(|e| e.1.as_str())
            .collect();
        assert_eq!(order, ["created", "updated", "updated-2"]);
        assert_eq!(overlap(&log).0, 1);
        assert!(lanes.is_empty() && !lanes.is_busy("chat/1"));
    }

    #[tokio::test]
    async fn lanes_run_side_by_side_up_to_the_limit_and_the_rest_wait_their_turn() {
        let log = Log::default();
        let mut lanes = lanes(3, &log);
        for n in 0..10 {
            assert!(push(
                &mut lanes,
                &format!("chat/{n}"),
                &format!("e{n}"),
                100
            ));
        }
        // The same message again: behind its lane, not a lane of its own.
        assert!(push(&mut lanes, "chat/0", "e0-updated", 100));
        assert_eq!((lanes.running(), lanes.waiting()), (3, 8));
        let started = tokio::time::Instant::now();
        lanes.drain().await;
        let log = log.lock().unwrap().clone();
        assert_eq!(overlap(&log), (1, 3));
        assert_eq!(log.iter().filter(|e| e.2 == "end").count(), 11);
        // 11 items of 100 ms, 3 at a time: 4 rounds.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        // First come, first served: the waiting lanes started in the order they came.
        let firsts: Vec<&str> = log
            .iter()
            .filter(|e| e.2 == "start" && !e.1.contains("updated"))
            .map(|e| e.1.as_str())
            .collect();
        let expected: Vec<String> = (0..10).map(|n| format!("e{n}")).collect();
        assert_eq!(firsts, expected);
    }

    #[tokio::test]
    async fn an_item_already_waiting_or_running_is_not_taken_again() {
        let log = Log::default();
        let mut lanes = lanes(1, &log);
        assert!(push(&mut lanes, "chat/1", "a", 50));
        assert!(push(&mut lanes, "chat/2", "b", 50));
        assert!(!push(&mut lanes, "chat/1", "a", 50), "running");
        assert!(!push(&mut lanes, "chat/2", "b", 50), "waiting");
        assert!(lanes.contains("a") && lanes.contains("b"));
        lanes.drain().await;
        assert_eq!(log.lock().unwrap().len(), 4, "each ran once");
        // Done: a later retry may take it again.
        assert!(!lanes.contains("a"));
        assert!(push(&mut lanes, "chat/1", "a", 1));
        lanes.drain().await;
    }

    #[tokio::test]
    async fn a_panicking_item_frees_its_lane() {
        let mut lanes = Lanes::new(1, |fail: bool| async move {
            if fail {
                panic!("boom");
            }
        });
        assert!(lanes.push("chat/1", "a", true));
        assert!(lanes.push("chat/1", "b", false));
        lanes.drain().await;
        assert!(lanes.is_empty() && !lanes.is_busy("chat/1"));
    }
}
