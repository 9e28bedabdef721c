package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;

/**
 * Bounds the payload bytes a read of one shard holds (review m10: a batch of 500 rows of 1 MB each
 * would hold 500 MB per shard, twice with the read-ahead). The read itself returns a payload only
 * when it is at most {@link #inlineLimit} bytes, so that {@code limit} rows hold at most the cap;
 * a larger payload comes back as null with its length. Then {@link #apply} keeps the rows in id order
 * while the payload bytes before each are below the cap (the first row always, however large), and
 * fetches the larger payloads of the rows kept in a second statement.
 *
 * <p>A row is kept or dropped from the end only, so a read that was cut is a prefix of the shard's
 * rows in id order, as a read with a smaller limit would be. A row whose payload is no longer there
 * (deleted meanwhile: another relay took the shard over and published it) ends the read at that row.
 */
final class PayloadCap {
    private final long batchBytes;

    /** @param batchBytes the payload bytes after which a read takes no more rows */
    PayloadCap(long batchBytes) {
        if (batchBytes < 1) {
            throw new IllegalArgumentException("batchBytes must be positive: " + batchBytes);
        }
        this.batchBytes = batchBytes;
    }

    long batchBytes() {
        return batchBytes;
    }

    /**
     * @param limit the read's row limit
     * @return the largest payload a read of {@code limit} rows returns in its first statement: {@code
     *     limit} of them stay within the cap
     */
    int inlineLimit(int limit) {
        return (int) Math.min(Integer.MAX_VALUE, batchBytes / Math.max(1, limit));
    }

    /** Fetches the payloads of rows by id; a row no longer there is absent from the answer. */
    @FunctionalInterface
    interface Fetch {
        Map<Long, byte[]> payloads(long[] ids) throws SQLException;
    }

    /**
     * @param rows the rows as read, in id order
     * @param lengths per row, the length of a payload the read left out (it was above the inline limit), or
     *     -1 when the row's payload is as read (present, or a tombstone, or left out on purpose: its
     *     topic is held)
     * @return the rows whose payload bytes before them stay below the cap, with their payloads
     */
    List<OutboxRow> apply(List<OutboxRow> rows, int[] lengths, Fetch fetch) throws SQLException {
        int kept = kept(rows, lengths);
        long[] missing = missing(rows, lengths, kept);
        if (missing.length == 0) {
            return kept == rows.size() ? rows : new ArrayList<>(rows.subList(0, kept));
        }
        return fill(rows, lengths, kept, fetch.payloads(missing));
    }

    /**
     * {@link #apply} for several shards' reads at once, with one fetch for all of them.
     *
     * @param rows per shard, its rows as read, in id order
     * @param lengths per shard with a payload left out, its lengths as for {@link #apply}; a shard absent
     *     here left none out, and its rows stay as they are
     * @return per shard, its rows cut to the cap, with their payloads
     */
    <K> Map<K, List<OutboxRow>> applyAll(Map<K, List<OutboxRow>> rows, Map<K, int[]> lengths, Fetch fetch)
            throws SQLException {
        if (lengths.isEmpty()) {
            return rows;
        }
        Map<K, Integer> kept = new HashMap<>();
        LongStream.Builder missing = LongStream.builder();
        lengths.forEach((k, l) -> {
            int n = kept(rows.get(k), l);
            kept.put(k, n);
            for (long id : missing(rows.get(k), l, n)) {
                missing.add(id);
            }
        });
        long[] ids = missing.build().toArray();
        Map<Long, byte[]> payloads = ids.length == 0 ? Map.of() : fetch.payloads(ids);
        Map<K, List<OutboxRow>> out = new HashMap<>(rows);
        lengths.forEach((k, l) -> out.put(k, fill(rows.get(k), l, kept.get(k), payloads)));
        return out;
    }

    /** @return how many rows, from the first, have payload bytes before them below the cap (at least one) */
    private int kept(List<OutboxRow> rows, int[] lengths) {
        long before = 0;
        for (int i = 0; i < rows.size(); i++) {
            if (i > 0 && before >= batchBytes) {
                return i;
            }
            before += lengths[i] >= 0 ? lengths[i] : rows.get(i).payloadSize();
        }
        return rows.size();
    }

    /** @return the ids of the first {@code kept} rows whose payload the read left out */
    private static long[] missing(List<OutboxRow> rows, int[] lengths, int kept) {
        int n = 0;
        for (int i = 0; i < kept; i++) {
            if (lengths[i] >= 0) {
                n++;
            }
        }
        long[] ids = new long[n];
        int k = 0;
        for (int i = 0; i < kept; i++) {
            if (lengths[i] >= 0) {
                ids[k++] = rows.get(i).id();
            }
        }
        return ids;
    }

    /**
     * @param payloads the fetched payloads of the rows {@link #missing} named, by id
     * @return the first {@code kept} rows with those payloads, up to the first row whose payload was not found
     */
    private static List<OutboxRow> fill(List<OutboxRow> rows, int[] lengths, int kept, Map<Long, byte[]> payloads) {
        List<OutboxRow> out = new ArrayList<>(kept);
        for (int i = 0; i < kept; i++) {
            OutboxRow row = rows.get(i);
            if (lengths[i] >= 0) {
                byte[] payload = payloads.get(row.id());
                if (payload == null) {
                    break; // deleted since the read: the read ends before it
                }
                row.fillPayload(payload);
            }
            out.add(row);
        }
        return out;
    }

    /**
     * @param rows a read's rows, before any was sent
     * @param limit the read's row limit
     * @return whether the read may have left rows out: it returned {@code limit} rows, or its payload
     *     bytes reached the cap (a read cut by the cap always did)
     */
    boolean full(List<OutboxRow> rows, int limit) {
        if (rows.size() >= limit) {
            return true;
        }
        long bytes = 0;
        for (OutboxRow row : rows) {
            bytes += row.payloadSize();
        }
        return bytes >= batchBytes;
    }
}
