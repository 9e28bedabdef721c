package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The decisions of {@link PayloadCap}, on rows built here; {@code BatchBytesIT} runs them on PostgreSQL. */
class PayloadCapTest {

    private static final PayloadCap CAP = new PayloadCap(1_000);

    /** A row as read: its payload, or null when the read left it out (its length goes into the lengths). */
    private static OutboxRow row(long id, byte[] payload) {
        return new OutboxRow(id, UUID.randomUUID(), "t", "k" + id, "T", "c", "{}", payload, null);
    }

    private static List<Long> ids(List<OutboxRow> rows) {
        return rows.stream().map(OutboxRow::id).toList();
    }

    @Test
    void theInlineLimitKeepsAReadOfLimitRowsWithinTheCap() {
        assertThat(CAP.inlineLimit(10)).isEqualTo(100);
        assertThat(CAP.inlineLimit(3)).isEqualTo(333);
        assertThat(CAP.inlineLimit(5_000)).isZero();
        assertThat(new PayloadCap(1L << 30).inlineLimit(1)).isEqualTo(1 << 30);
        assertThatThrownBy(() -> new PayloadCap(0)).hasMessageContaining("batchBytes must be positive");
    }

    @Test
    void rowsAreKeptWhileThePayloadBytesBeforeThemAreBelowTheCap() throws Exception {
        List<OutboxRow> rows = new ArrayList<>();
        for (long id = 1; id <= 6; id++) {
            rows.add(row(id, new byte[300]));
        }
        int[] lengths = {-1, -1, -1, -1, -1, -1};
        // 0, 300, 600 and 900 bytes before rows 1 to 4: kept; 1,200 before row 5
        List<OutboxRow> kept = CAP.apply(rows, lengths, ids -> {
            throw new AssertionError("nothing to fetch");
        });
        assertThat(ids(kept)).containsExactly(1L, 2L, 3L, 4L);
        assertThat(CAP.full(kept, 500))
                .as("a read cut by the cap counts as full")
                .isTrue();
    }

    @Test
    void aRowLargerThanTheCapIsReadAloneAndItsPayloadFetched() throws Exception {
        List<OutboxRow> rows = List.of(row(1, null), row(2, new byte[10]), row(3, null));
        int[] lengths = {5_000, -1, 20};
        List<long[]> asked = new ArrayList<>();
        List<OutboxRow> kept = CAP.apply(rows, lengths, ids -> {
            asked.add(ids);
            Map<Long, byte[]> found = new HashMap<>();
            for (long id : ids) {
                found.put(id, new byte[id == 1 ? 5_000 : 20]);
            }
            return found;
        });
        assertThat(ids(kept)).containsExactly(1L);
        assertThat(asked).hasSize(1);
        assertThat(asked.get(0)).containsExactly(1L);
        assertThat(kept.get(0).payloadSize()).isEqualTo(5_000);
    }

    @Test
    void fetchedPayloadsFillTheirRowsAndAVanishedRowEndsTheRead() throws Exception {
        List<OutboxRow> rows = List.of(row(1, new byte[50]), row(2, null), row(3, new byte[50]), row(4, null));
        int[] lengths = {-1, 200, -1, 200};
        List<OutboxRow> kept = CAP.apply(rows, lengths, ids -> Map.of(2L, new byte[200], 4L, new byte[200]));
        assertThat(ids(kept)).containsExactly(1L, 2L, 3L, 4L);
        assertThat(kept).extracting(OutboxRow::payloadSize).containsExactly(50, 200, 50, 200);
        assertThat(CAP.full(kept, 500))
                .as("500 payload bytes, below the cap, and fewer rows than the limit")
                .isFalse();

        List<OutboxRow> again = List.of(row(1, new byte[50]), row(2, null), row(3, new byte[50]));
        // row 2 was deleted between the read and the fetch (another relay published it): the read ends before it
        assertThat(ids(CAP.apply(again, new int[] {-1, 200, -1}, ids -> Map.of())))
                .containsExactly(1L);
    }

    @Test
    void severalShardsAreCutEachToTheCapWithOneFetchForAll() throws Exception {
        // shard 1: two long rows, the second past the cap; shard 2: one long row; shard 3: nothing left out
        Map<Integer, List<OutboxRow>> rows = Map.of(
                1, List.of(row(1, null), row(2, null), row(3, new byte[10])),
                2, List.of(row(4, new byte[10]), row(5, null)),
                3, List.of(row(6, new byte[10])));
        Map<Integer, int[]> lengths = Map.of(1, new int[] {900, 900, -1}, 2, new int[] {-1, 300});
        List<long[]> asked = new ArrayList<>();
        Map<Integer, List<OutboxRow>> cut = CAP.applyAll(rows, lengths, ids -> {
            asked.add(ids);
            Map<Long, byte[]> found = new HashMap<>();
            for (long id : ids) {
                found.put(id, new byte[id == 5 ? 300 : 900]);
            }
            return found;
        });
        assertThat(asked).hasSize(1);
        assertThat(asked.get(0)).containsExactlyInAnyOrder(1L, 2L, 5L);
        assertThat(ids(cut.get(1)))
                .as("900 bytes before row 2: kept; 1,800 before row 3")
                .containsExactly(1L, 2L);
        assertThat(cut.get(1)).extracting(OutboxRow::payloadSize).containsExactly(900, 900);
        assertThat(ids(cut.get(2))).containsExactly(4L, 5L);
        assertThat(cut.get(2).get(1).payloadSize()).isEqualTo(300);
        assertThat(cut.get(3)).isSameAs(rows.get(3));
    }

    @Test
    void tombstonesAndRowsReadWithoutPayloadCountNothing() throws Exception {
        List<OutboxRow> rows = new ArrayList<>();
        for (long id = 1; id <= 20; id++) {
            rows.add(row(id, null));
        }
        int[] lengths = new int[20];
        Arrays.fill(lengths, -1);
        assertThat(CAP.apply(rows, lengths, ids -> Map.of())).hasSize(20);
        assertThat(CAP.full(rows, 20)).as("as many as the limit").isTrue();
        assertThat(CAP.full(rows, 21)).isFalse();
    }
}
