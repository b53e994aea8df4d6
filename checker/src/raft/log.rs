//! What the check remembers of the canonical log: the first apply of each
//! recent index ([`Window`]), commits waiting for the first apply of their
//! index ([`Pending`]), the indexes whose later events the window could no
//! longer judge ([`Unchecked`]), and the first applies an audit pass looks
//! those up in ([`Oracle`]).
//!
//! Everything here has a fixed capacity: the window spans at most a set
//! number of indexes, pending commits are capped, unchecked indexes collapse
//! into a capped number of intervals. What falls out is never dropped
//! silently; it becomes unchecked and is judged by an audit pass.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use formats::trace::{EntryKind, TraceEvent, TraceKind};
use rustc_hash::FxHashMap;
use serde_json::Value;

/// The first apply of an index in the merged order, in 40 bytes: enough to
/// compare every later apply and commit of the index with it and to print
/// it as evidence. The node writes digests as 16 lowercase hex digits,
/// which are kept as their value (printing it back gives the same text);
/// any other digest text is kept beside the record, keyed by index.
#[derive(Debug, Clone, Copy)]
pub(super) struct FirstApply {
    time: u64,
    node: u64,
    term: u64,
    digest: u64,
    kind: EntryKind,
    /// The digest is not 16 hex digits; its text is in a side table.
    text: bool,
}

impl FirstApply {
    /// The record of an apply event and, when the digest is not hex, its text.
    fn of(
        time: u64,
        node: u64,
        term: u64,
        digest: &str,
        kind: EntryKind,
    ) -> (Self, Option<Box<str>>) {
        let hex = hex16(digest);
        let rec = FirstApply {
            time,
            node,
            term,
            digest: hex.unwrap_or(0),
            kind,
            text: hex.is_none(),
        };
        (rec, hex.is_none().then(|| digest.into()))
    }
}

/// The value of a digest written as exactly 16 lowercase hex digits; the
/// only texts for which `format!("{v:016x}")` gives the text back.
fn hex16(s: &str) -> Option<u64> {
    let ok = s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// An apply event's fields, as the log takes them.
#[derive(Debug, Clone, Copy)]
pub(super) struct ApplyFields<'e> {
    pub time: u64,
    pub node: u64,
    pub index: u64,
    pub term: u64,
    pub digest: &'e str,
    pub kind: EntryKind,
}

impl<'e> ApplyFields<'e> {
    /// The fields of `e` if it is an apply.
    pub fn of(e: &'e TraceEvent) -> Option<Self> {
        match &e.kind {
            TraceKind::Apply {
                index,
                term,
                digest,
                kind,
            } => Some(ApplyFields {
                time: e.time,
                node: e.node,
                index: *index,
                term: *term,
                digest,
                kind: *kind,
            }),
            _ => None,
        }
    }
}

/// A first apply as found: the record and its index's digest text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry<'a> {
    index: u64,
    rec: &'a FirstApply,
    text: Option<&'a str>,
}

impl Entry<'_> {
    pub fn node(&self) -> u64 {
        self.rec.node
    }

    pub fn term(&self) -> u64 {
        self.rec.term
    }

    pub fn digest(&self) -> Cow<'_, str> {
        match self.text {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(format!("{:016x}", self.rec.digest)),
        }
    }

    /// Whether an apply of this index wrote the same entry.
    pub fn same(&self, term: u64, digest: &str) -> bool {
        term == self.rec.term
            && match self.text {
                Some(t) => t == digest,
                None => hex16(digest) == Some(self.rec.digest),
            }
    }

    /// The apply event this record was made from, as a violation shows it.
    pub fn event(&self) -> TraceEvent {
        TraceEvent {
            time: self.rec.time,
            node: self.rec.node,
            kind: TraceKind::Apply {
                index: self.index,
                term: self.rec.term,
                digest: self.digest().into_owned(),
                kind: self.rec.kind,
            },
        }
    }

    pub fn json(&self) -> Value {
        super::json_of(&self.event())
    }
}

/// Where an index stands in the window.
pub(super) enum Lookup<'a> {
    /// Its first apply is held.
    First(Entry<'a>),
    /// No apply of it yet: the next one will be the first.
    Open,
    /// Below the window: its first apply, if there was one, is no longer held.
    Forgotten,
}

/// The first applies of the last `span` indexes, by index.
///
/// The window ends at the highest index applied so far and spans at most
/// `span` indexes, so it holds at most `span` records of 40 bytes whatever
/// the length of the run. Indexes below it are forgotten: an event about
/// one of them later becomes unchecked.
pub(super) struct Window {
    span: u64,
    /// The index of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<FirstApply>>,
    /// Digest texts that are not 16 hex digits, by index.
    texts: BTreeMap<u64, Box<str>>,
}

impl Window {
    pub fn new(span: u64) -> Self {
        assert!(span > 0, "the window must span at least one index");
        Window {
            span,
            base: 0,
            slots: VecDeque::new(),
            texts: BTreeMap::new(),
        }
    }

    pub fn lookup(&self, index: u64) -> Lookup<'_> {
        if index < self.base {
            return Lookup::Forgotten;
        }
        match usize::try_from(index - self.base)
            .ok()
            .and_then(|k| self.slots.get(k))
        {
            Some(Some(rec)) => Lookup::First(Entry {
                index,
                rec,
                text: rec
                    .text
                    .then(|| self.texts.get(&index).map(|t| &**t))
                    .flatten(),
            }),
            _ => Lookup::Open,
        }
    }

    /// Records the first apply of an [`Lookup::Open`] index, sliding the
    /// window forward when the index is beyond its end. Returns the new base.
    pub fn record(&mut self, a: &ApplyFields) -> u64 {
        let end = self.base + self.slots.len() as u64;
        if a.index >= end && a.index - self.base >= self.span {
            self.slide_to(a.index - (self.span - 1));
        }
        let k = (a.index - self.base) as usize;
        if k >= self.slots.len() {
            self.slots.resize(k + 1, None);
        }
        let (rec, text) = FirstApply::of(a.time, a.node, a.term, a.digest, a.kind);
        self.slots[k] = Some(rec);
        if let Some(t) = text {
            self.texts.insert(a.index, t);
        }
        self.base
    }

    fn slide_to(&mut self, base: u64) {
        let drop = (base - self.base).min(self.slots.len() as u64) as usize;
        self.slots.drain(..drop);
        self.base = base;
        if self.texts.first_key_value().is_some_and(|(&i, _)| i < base) {
            self.texts = self.texts.split_off(&base);
        }
    }
}

/// A commit event waiting for the first apply of its index.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingCommit {
    pub time: u64,
    pub node: u64,
    pub term: u64,
    /// Its position in its node's events (orders the node's violations).
    pub pos: u64,
}

impl PendingCommit {
    pub fn event(&self, index: u64) -> TraceEvent {
        TraceEvent {
            time: self.time,
            node: self.node,
            kind: TraceKind::Commit {
                index,
                term: self.term,
            },
        }
    }
}

/// Commits whose index nobody has applied yet (a commit usually comes just
/// before the applies of its index), at most `cap` of them.
pub(super) struct Pending {
    by_index: BTreeMap<u64, Vec<PendingCommit>>,
    len: usize,
    cap: usize,
}

impl Pending {
    pub fn new(cap: usize) -> Self {
        Pending {
            by_index: BTreeMap::new(),
            len: 0,
            cap: cap.max(1),
        }
    }

    /// Adds a commit; returns the ones that no longer fit (lowest indexes).
    pub fn add(&mut self, index: u64, c: PendingCommit) -> Vec<(u64, PendingCommit)> {
        self.by_index.entry(index).or_default().push(c);
        self.len += 1;
        let mut out = Vec::new();
        while self.len > self.cap {
            let Some((i, cs)) = self.by_index.pop_first() else {
                break;
            };
            self.len -= cs.len();
            out.extend(cs.into_iter().map(|c| (i, c)));
        }
        out
    }

    /// The commits of `index`, now that its first apply is known.
    pub fn take(&mut self, index: u64) -> Vec<PendingCommit> {
        let cs = self.by_index.remove(&index).unwrap_or_default();
        self.len -= cs.len();
        cs
    }

    /// The commits of indexes below `base`, which the window has passed.
    pub fn below(&mut self, base: u64) -> Vec<(u64, PendingCommit)> {
        if self
            .by_index
            .first_key_value()
            .is_none_or(|(&i, _)| i >= base)
        {
            return Vec::new();
        }
        let keep = self.by_index.split_off(&base);
        let gone = std::mem::replace(&mut self.by_index, keep);
        let out: Vec<(u64, PendingCommit)> = gone
            .into_iter()
            .flat_map(|(i, cs)| cs.into_iter().map(move |c| (i, c)))
            .collect();
        self.len -= out.len();
        out
    }
}

/// The indexes with events the window could not judge, as at most `cap`
/// disjoint inclusive intervals. Past the cap, the two intervals closest to
/// each other are joined: auditing a few indexes too many costs time, never
/// a wrong answer.
pub(super) struct Unchecked {
    spans: BTreeMap<u64, u64>,
    cap: usize,
}

impl Unchecked {
    pub fn new(cap: usize) -> Self {
        Unchecked {
            spans: BTreeMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn add(&mut self, index: u64) {
        let before = self
            .spans
            .range(..=index)
            .next_back()
            .map(|(&s, &e)| (s, e));
        let (start, mut end) = match before {
            Some((_, e)) if e >= index => return,
            Some((s, e)) if e + 1 == index => (s, index),
            _ => (index, index),
        };
        if let Some(next_end) = index.checked_add(1).and_then(|n| self.spans.remove(&n)) {
            end = next_end;
        }
        self.spans.insert(start, end);
        if self.spans.len() > self.cap {
            self.join_closest();
        }
    }

    fn join_closest(&mut self) {
        let spans: Vec<(u64, u64)> = self.spans.iter().map(|(&s, &e)| (s, e)).collect();
        let k = (1..spans.len())
            .min_by_key(|&k| spans[k].0 - spans[k - 1].1)
            .expect("more than one interval");
        self.spans.remove(&spans[k].0);
        self.spans.insert(spans[k - 1].0, spans[k].1);
    }

    /// The intervals in groups covering at most `size` indexes each (an
    /// interval longer than that is cut), one audit pass per group.
    pub fn batches(&self, size: u64) -> Vec<Vec<(u64, u64)>> {
        let size = size.max(1);
        let mut out = Vec::new();
        let mut group = Vec::new();
        let mut room = size;
        for (&s, &e) in &self.spans {
            let mut s = s;
            loop {
                if room == 0 {
                    out.push(std::mem::take(&mut group));
                    room = size;
                }
                let take_end = e.min(s.saturating_add(room - 1));
                group.push((s, take_end));
                room -= take_end - s + 1;
                if take_end == e {
                    break;
                }
                s = take_end + 1;
            }
        }
        if !group.is_empty() {
            out.push(group);
        }
        out
    }
}

/// The first applies of a batch of unchecked indexes, built by one pass
/// over the whole input before the audit pass that consults them.
pub(super) struct Oracle {
    /// Disjoint sorted intervals, each with its slots.
    spans: Vec<(u64, u64, Vec<Option<FirstApply>>)>,
    texts: FxHashMap<u64, Box<str>>,
}

impl Oracle {
    pub fn new(batch: &[(u64, u64)]) -> Self {
        Oracle {
            spans: batch
                .iter()
                .map(|&(s, e)| (s, e, vec![None; (e - s + 1) as usize]))
                .collect(),
            texts: FxHashMap::default(),
        }
    }

    fn slot(&self, index: u64) -> Option<(usize, usize)> {
        let k = self.spans.partition_point(|&(_, e, _)| e < index);
        let (s, _, _) = self.spans.get(k)?;
        (index >= *s).then(|| (k, (index - s) as usize))
    }

    /// Takes an event of the first pass; the first apply of a covered index is kept.
    pub fn observe(&mut self, e: &TraceEvent) {
        let Some(a) = ApplyFields::of(e) else {
            return;
        };
        let Some((k, j)) = self.slot(a.index) else {
            return;
        };
        let slot = &mut self.spans[k].2[j];
        if slot.is_none() {
            let (rec, text) = FirstApply::of(a.time, a.node, a.term, a.digest, a.kind);
            *slot = Some(rec);
            if let Some(t) = text {
                self.texts.insert(a.index, t);
            }
        }
    }

    /// The first apply of a covered index, if anyone applied it.
    pub fn first(&self, index: u64) -> Option<Entry<'_>> {
        let (k, j) = self.slot(index)?;
        let rec = self.spans[k].2[j].as_ref()?;
        Some(Entry {
            index,
            rec,
            text: rec
                .text
                .then(|| self.texts.get(&index).map(|t| &**t))
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(index: u64, digest: &str) -> ApplyFields<'_> {
        ApplyFields {
            time: index * 10,
            node: 1,
            index,
            term: 2,
            digest,
            kind: EntryKind::Command,
        }
    }

    #[test]
    fn a_record_is_small() {
        assert_eq!(std::mem::size_of::<Option<FirstApply>>(), 40);
    }

    #[test]
    fn hex_digests_print_back_exactly_and_others_are_kept_as_text() {
        let mut w = Window::new(8);
        w.record(&apply(1, "00ff00ff00ff00ff"));
        w.record(&apply(2, "00FF00FF00FF00FF"));
        w.record(&apply(3, "d3"));
        for (i, d) in [(1, "00ff00ff00ff00ff"), (2, "00FF00FF00FF00FF"), (3, "d3")] {
            let Lookup::First(e) = w.lookup(i) else {
                panic!("index {i} held");
            };
            assert_eq!(e.digest(), d);
            assert!(e.same(2, d));
            assert!(!e.same(3, d), "the term counts");
            assert!(!e.same(2, "00ff00ff00ff00fe"));
            assert_eq!(e.json()["digest"], d);
        }
    }

    #[test]
    fn the_window_slides_and_forgets_what_falls_behind() {
        let mut w = Window::new(4);
        for i in 1..=4 {
            w.record(&apply(i, "x"));
        }
        assert_eq!(w.base, 1, "a span of 4 holds 1..=4");
        assert!(matches!(w.lookup(1), Lookup::First(_)));
        w.record(&apply(6, "y"));
        assert_eq!(w.base, 3);
        assert!(matches!(w.lookup(2), Lookup::Forgotten));
        assert!(matches!(w.lookup(4), Lookup::First(_)));
        assert!(matches!(w.lookup(5), Lookup::Open));
        assert!(matches!(w.lookup(100), Lookup::Open));
        w.record(&apply(1000, "z"));
        assert_eq!(w.base, 997);
        w.record(&apply(u64::MAX, "end"));
        assert_eq!(w.base, u64::MAX - 3);
        assert!(matches!(w.lookup(u64::MAX), Lookup::First(_)));
        assert!(matches!(w.lookup(6), Lookup::Forgotten));
        assert!(w.texts.keys().all(|&i| i >= 997), "texts slide too");
    }

    #[test]
    fn pending_commits_are_capped_and_released_in_index_order() {
        let c = |pos| PendingCommit {
            time: pos,
            node: 1,
            term: 1,
            pos,
        };
        let mut p = Pending::new(3);
        assert!(p.add(5, c(0)).is_empty());
        assert!(p.add(3, c(1)).is_empty());
        assert!(p.add(5, c(2)).is_empty());
        let out = p.add(9, c(3));
        assert_eq!(
            out.iter().map(|(i, c)| (*i, c.pos)).collect::<Vec<_>>(),
            [(3, 1)]
        );
        assert_eq!(p.take(5).len(), 2);
        assert!(p.add(7, c(4)).is_empty());
        assert_eq!(p.below(8).len(), 1);
        assert_eq!(p.len, 1);
    }

    #[test]
    fn unchecked_indexes_coalesce_and_batch() {
        let mut u = Unchecked::new(3);
        for i in [5, 6, 7, 3, 4, 20, 30, 31] {
            u.add(i);
        }
        let spans: Vec<_> = u.spans.iter().map(|(&s, &e)| (s, e)).collect();
        assert_eq!(spans, [(3, 7), (20, 20), (30, 31)]);
        u.add(40);
        let spans: Vec<_> = u.spans.iter().map(|(&s, &e)| (s, e)).collect();
        assert_eq!(
            spans,
            [(3, 7), (20, 20), (30, 40)],
            "the closest two joined"
        );
        assert_eq!(
            u.batches(4),
            vec![
                vec![(3, 6)],
                vec![(7, 7), (20, 20), (30, 31)],
                vec![(32, 35)],
                vec![(36, 39)],
                vec![(40, 40)]
            ]
        );
    }

    #[test]
    fn the_oracle_keeps_the_first_apply_of_covered_indexes() {
        let mut o = Oracle::new(&[(2, 3), (10, 10)]);
        let ev = |time, index, digest: &str| TraceEvent {
            time,
            node: time,
            kind: TraceKind::Apply {
                index,
                term: 1,
                digest: digest.into(),
                kind: EntryKind::Noop,
            },
        };
        o.observe(&ev(1, 3, "a"));
        o.observe(&ev(2, 3, "b"));
        o.observe(&ev(3, 4, "c"));
        assert!(o.slot(10).is_some() && o.slot(4).is_none() && o.slot(1).is_none());
        assert_eq!(o.first(3).map(|e| e.node()), Some(1));
        assert!(o.first(2).is_none() && o.first(4).is_none());
    }
}
