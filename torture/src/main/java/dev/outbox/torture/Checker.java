package dev.outbox.torture;

import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * Judges a recorded {@link History}: a pure function with no I/O, so that it can be fed made-up
 * histories in tests and shown to catch each kind of failure.
 */
public final class Checker {
    /** Examples printed under a failed invariant. */
    static final int EXAMPLES = 5;

    private Checker() {}

    /**
     * @param h the history
     * @return each invariant with its count; {@link Verdict#passed()} when every counted one is 0
     */
    public static Verdict check(History h) {
        Map<UUID, History.Committed> committed = new HashMap<>();
        Map<String, History.Committed> latest = new HashMap<>();
        Map<String, long[]> expectedTotals = new HashMap<>();
        for (History.Committed c : h.committed()) {
            committed.put(c.id(), c);
            latest.merge(c.key(), c, (a, b) -> a.seq() >= b.seq() ? a : b);
            long[] t = expectedTotals.computeIfAbsent(c.key(), k -> new long[2]);
            t[0]++;
            t[1] += c.amount();
        }

        Set<UUID> onTopic = new HashSet<>();
        Set<UUID> phantoms = new HashSet<>();
        Map<String, Set<UUID>> firstSeen = new HashMap<>();
        Map<String, Long> highestSeq = new HashMap<>();
        Map<String, UUID> lastRecord = new HashMap<>();
        long relayRecords = 0;
        long injected = 0;
        long reordered = 0;
        List<String> reorderExamples = new ArrayList<>();
        Map<String, History.TopicRecord> highestRecord = new HashMap<>();
        for (History.TopicRecord r : h.records()) {
            if (r.injected()) {
                injected++;
            } else {
                relayRecords++;
                // the duplicator's copies land wherever it happened to read them: only the relay's
                // records say which message a key ends on
                lastRecord.put(r.key(), r.id());
            }
            onTopic.add(r.id());
            if (h.aborted().contains(r.id())) {
                phantoms.add(r.id());
            }
            History.Committed c = committed.get(r.id());
            if (c != null
                    && firstSeen.computeIfAbsent(c.key(), k -> new HashSet<>()).add(c.id())) {
                long highest = highestSeq.getOrDefault(c.key(), Long.MIN_VALUE);
                if (c.seq() < highest) {
                    reordered++;
                    if (reorderExamples.size() < EXAMPLES) {
                        History.TopicRecord before = highestRecord.get(c.key());
                        reorderExamples.add(c.key() + " seq " + c.seq() + " first at " + r.partition() + "@"
                                + r.offset() + " (sent "
                                + Instant.ofEpochMilli(r.timestamp()) + "), after seq " + highest + " at "
                                + before.partition() + "@" + before.offset()
                                + " (sent " + Instant.ofEpochMilli(before.timestamp()) + ")");
                    }
                } else {
                    highestSeq.put(c.key(), c.seq());
                    highestRecord.put(c.key(), r);
                }
            }
        }
        long relayDuplicates = relayRecords
                - h.records().stream()
                        .filter(r -> !r.injected())
                        .map(History.TopicRecord::id)
                        .distinct()
                        .count();

        long lost = 0;
        long missingEffects = 0;
        for (History.Committed c : h.committed()) {
            if (!onTopic.contains(c.id())) {
                lost++;
            }
            if (h.effects().getOrDefault(c.id(), 0) == 0) {
                missingEffects++;
            }
        }
        long stale = 0;
        List<String> staleExamples = new ArrayList<>();
        for (var e : latest.entrySet()) {
            UUID last = lastRecord.get(e.getKey());
            if (last != null && !last.equals(e.getValue().id())) {
                stale++;
                if (staleExamples.size() < EXAMPLES) {
                    History.Committed lastMessage = committed.get(last);
                    staleExamples.add(e.getKey() + " ends on seq " + (lastMessage == null ? "?" : lastMessage.seq())
                            + ", latest committed is seq " + e.getValue().seq());
                }
            }
        }
        long doubleEffects = h.effects().values().stream().filter(n -> n > 1).count();
        long foreignEffects = h.effects().keySet().stream()
                .filter(id -> !committed.containsKey(id))
                .count();
        Set<String> keys = new HashSet<>(expectedTotals.keySet());
        keys.addAll(h.totals().keySet());
        long totalsOff = 0;
        for (String k : keys) {
            long[] want = expectedTotals.getOrDefault(k, new long[2]);
            History.Total got = h.totals().getOrDefault(k, new History.Total(0, 0));
            if (got.applied() != want[0] || got.total() != want[1]) {
                totalsOff++;
            }
        }
        long httpTwice = h.http().stream().filter(o -> o.orderIds().size() > 1).count();
        long httpUnanswered = h.http().stream().filter(o -> !o.answered()).count();
        long ordersLost = h.http().stream()
                .flatMap(o -> o.orderIds().stream())
                .filter(id -> !h.publishedOrderIds().contains(id))
                .count();

        List<Verdict.Line> lines = new ArrayList<>();
        lines.add(Verdict.Line.counted("lost (committed, not on Kafka)", lost));
        lines.add(Verdict.Line.counted("phantoms (rolled back, on Kafka)", phantoms.size()));
        lines.add(Verdict.Line.counted("first appearances out of commit order", reordered, reorderExamples));
        lines.add(Verdict.Line.counted("keys whose last record is stale", stale, staleExamples));
        lines.add(Verdict.Line.info("duplicate records from the relay (at least once)", relayDuplicates));
        lines.add(Verdict.Line.info("duplicate records injected", injected));
        lines.add(Verdict.Line.counted("double effects (one id charged twice)", doubleEffects));
        lines.add(Verdict.Line.counted("missing effects (committed, not charged)", missingEffects));
        lines.add(Verdict.Line.counted("effects of uncommitted messages", foreignEffects));
        lines.add(Verdict.Line.counted("keys whose running total is off", totalsOff));
        lines.add(Verdict.Line.counted("outbox rows left unpublished", h.unpublishedRows()));
        lines.add(Verdict.Line.counted("outbox rows parked", h.parkedRows()));
        lines.add(Verdict.Line.counted("HTTP operations executed twice", httpTwice));
        lines.add(Verdict.Line.counted("HTTP orders not on Kafka", ordersLost));
        lines.add(Verdict.Line.info("HTTP operations never answered 201", httpUnanswered));
        return new Verdict(
                h.committed().size(),
                h.aborted().size(),
                h.records().size(),
                h.http().size(),
                h.faults(),
                lines);
    }
}
