package dev.outbox.torture;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/** Counts the faults injected, by what was done, in the order they were first seen. */
final class Ledger {
    private final Map<String, AtomicLong> counts = new LinkedHashMap<>();

    synchronized void add(String what, long n) {
        counts.computeIfAbsent(what, k -> new AtomicLong()).addAndGet(n);
    }

    synchronized long total() {
        return counts.values().stream().mapToLong(AtomicLong::get).sum();
    }

    synchronized Map<String, Long> snapshot() {
        Map<String, Long> out = new LinkedHashMap<>();
        counts.entrySet().stream()
                .sorted(Map.Entry.comparingByKey())
                .forEach(e -> out.put(e.getKey(), e.getValue().get()));
        return out;
    }
}
