package dev.outbox.torture;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The checker finds each kind of failure in a made-up history: a checker that cannot fail proves nothing. */
class CheckerTest {
    private final List<History.Committed> committed = new ArrayList<>();
    private final List<History.TopicRecord> records = new ArrayList<>();
    private final Map<UUID, Integer> effects = new HashMap<>();
    private final Map<String, History.Total> totals = new HashMap<>();
    private long offset;

    private History.Committed commit(String key, long seq, long amount) {
        History.Committed c = new History.Committed(UUID.randomUUID(), key, seq, amount);
        committed.add(c);
        return c;
    }

    private void publish(History.Committed c) {
        long at = offset++;
        records.add(new History.TopicRecord(0, at, c.key(), c.id(), false, at));
    }

    private void charge(History.Committed c) {
        effects.merge(c.id(), 1, Integer::sum);
        totals.merge(
                c.key(),
                new History.Total(1, c.amount()),
                (a, b) -> new History.Total(a.applied() + b.applied(), a.total() + b.total()));
    }

    private History history(Set<UUID> aborted, List<History.HttpOperation> http, Set<String> publishedOrders) {
        Map<String, Long> faults = new LinkedHashMap<>();
        faults.put("SIGKILL", 1L);
        return new History(committed, aborted, records, effects, totals, 0, 0, http, publishedOrders, faults);
    }

    /** G1-G5 as the checker sees them: a clean history passes with every counted invariant at 0, duplicates allowed. */
    @Test
    void aCleanHistoryWithDuplicatesPasses() {
        var a1 = commit("a", 1, 10);
        var a2 = commit("a", 2, 20);
        var b1 = commit("b", 1, 5);
        for (var c : List.of(a1, a2, b1)) {
            publish(c);
            charge(c);
        }
        publish(a1); // republished after a crash, before a2's last record below
        publish(a2);
        records.add(new History.TopicRecord(0, offset, "a", a1.id(), true, offset)); // injected, lands last
        Verdict v = Checker.check(history(
                Set.of(UUID.randomUUID()),
                List.of(new History.HttpOperation("op-1", List.of("o-1"), true)),
                Set.of("o-1")));
        assertThat(v.failures()).isEmpty();
        assertThat(v.passed()).isTrue();
        assertThat(v.count("duplicate records from the relay (at least once)")).isEqualTo(2);
        assertThat(v.count("duplicate records injected")).isEqualTo(1);
        assertThat(v.summaryLine()).startsWith("torture: PASS committed=3 ");
    }

    /** G1, G2, G3, G4, G5: a lost message, a phantom, a reorder, a stale last record, a double effect and a twice-executed HTTP operation are each reported once. */
    @Test
    void reportsEachKindOfFailure() {
        var lost = commit("lost", 1, 1);
        charge(lost); // charged (say, from a copy read before a purge), but never on the topic

        var early = commit("order", 1, 1);
        var late = commit("order", 2, 1);
        publish(late);
        publish(early); // reorder: seq 1 first appears after seq 2; also the key's last record is stale
        charge(early);
        charge(late);

        var s1 = commit("stale", 1, 1);
        var s2 = commit("stale", 2, 1);
        publish(s1);
        publish(s2);
        publish(s1); // a zombie's copy of s1 lands after s2: stale last record, first appearances in order
        charge(s1);
        charge(s2);

        var twice = commit("twice", 1, 7);
        publish(twice);
        charge(twice);
        charge(twice);

        UUID phantom = UUID.randomUUID();
        records.add(new History.TopicRecord(0, offset, "phantom", phantom, false, offset));

        Verdict v = Checker.check(history(
                Set.of(phantom),
                List.of(new History.HttpOperation("op-1", List.of("o-1", "o-2"), true)),
                Set.of("o-1", "o-2")));

        assertThat(v.count("lost (committed, not on Kafka)")).isEqualTo(1);
        assertThat(v.count("phantoms (rolled back, on Kafka)")).isEqualTo(1);
        assertThat(v.count("first appearances out of commit order")).isEqualTo(1);
        assertThat(v.lines())
                .filteredOn(l -> l.name().equals("first appearances out of commit order"))
                .singleElement()
                .satisfies(
                        l -> assertThat(l.examples())
                                .containsExactly(
                                        "order seq 1 first at 0@1 (sent 1970-01-01T00:00:00.001Z), after seq 2 at 0@0 (sent 1970-01-01T00:00:00Z)"));
        assertThat(v.count("keys whose last record is stale")).isEqualTo(2);
        assertThat(v.count("double effects (one id charged twice)")).isEqualTo(1);
        assertThat(v.count("keys whose running total is off")).isEqualTo(1);
        assertThat(v.count("HTTP operations executed twice")).isEqualTo(1);
        assertThat(v.count("missing effects (committed, not charged)")).isZero();
        assertThat(v.passed()).isFalse();
        assertThat(v.summaryLine()).startsWith("torture: FAIL ").contains("lost (committed, not on Kafka)=1");
    }

    /** G1, G4, G7: missing effects, foreign effects, rows left in the outbox and orders not published fail the run. */
    @Test
    void reportsMissingEffectsLeftoversAndUnpublishedOrders() {
        var c = commit("k", 1, 3);
        publish(c);
        effects.put(UUID.randomUUID(), 1); // an effect for a message that never committed
        History h = new History(
                committed,
                Set.of(),
                records,
                effects,
                totals,
                2,
                1,
                List.of(new History.HttpOperation("op-1", List.of("o-1"), false)),
                Set.of(),
                Map.of());
        Verdict v = Checker.check(h);
        assertThat(v.count("missing effects (committed, not charged)")).isEqualTo(1);
        assertThat(v.count("effects of uncommitted messages")).isEqualTo(1);
        assertThat(v.count("keys whose running total is off")).isEqualTo(1);
        assertThat(v.count("outbox rows left unpublished")).isEqualTo(2);
        assertThat(v.count("outbox rows parked")).isEqualTo(1);
        assertThat(v.count("HTTP orders not on Kafka")).isEqualTo(1);
        assertThat(v.count("HTTP operations never answered 201")).isEqualTo(1);
        assertThat(v.failures()).hasSize(6);
    }
}
