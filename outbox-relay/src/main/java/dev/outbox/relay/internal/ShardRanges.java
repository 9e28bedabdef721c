package dev.outbox.relay.internal;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

/** Sets of shards as the relay logs and writes them. */
final class ShardRanges {
    private ShardRanges() {}

    /** @return e.g. {@code [0-31, 40, 42-43]} */
    static String ranges(Collection<Integer> shards) {
        StringBuilder sb = new StringBuilder("[");
        Integer start = null;
        Integer prev = null;
        for (Integer s : new TreeSet<>(shards)) {
            if (prev != null && s == prev + 1) {
                prev = s;
                continue;
            }
            if (start != null) {
                sb.append(sb.length() > 1 ? ", " : "")
                        .append(start.equals(prev) ? String.valueOf(start) : start + "-" + prev);
            }
            start = s;
            prev = s;
        }
        if (start != null) {
            sb.append(sb.length() > 1 ? ", " : "")
                    .append(start.equals(prev) ? String.valueOf(start) : start + "-" + prev);
        }
        return sb.append(']').toString();
    }

    /** @return each worker's shard and lease epoch */
    static Map<Integer, Long> epochs(Collection<ShardWorker> workers) {
        Map<Integer, Long> m = new HashMap<>();
        for (ShardWorker w : workers) {
            m.put(w.shard, w.epoch);
        }
        return m;
    }
}
