package dev.outbox.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.data.Offset.offset;

import dev.outbox.core.internal.Json;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class ContractTest {

    @Test
    void messageIdsAreVersion7AndStrictlyIncreasing() {
        UUID previous = MessageIds.next();
        Set<UUID> seen = new HashSet<>();
        for (int i = 0; i < 100_000; i++) {
            UUID id = MessageIds.next();
            assertThat(id.version()).isEqualTo(7);
            assertThat(id.variant()).isEqualTo(2);
            assertThat(id.toString()).isGreaterThan(previous.toString());
            assertThat(seen.add(id)).isTrue();
            previous = id;
        }
        assertThat(MessageIds.timestampMillis(previous)).isCloseTo(System.currentTimeMillis(), offset(5_000L));
    }

    @Test
    void shardFunctionIsStableAndSpreadsKeys() {
        // pinned values: the shard function is part of the storage format
        assertThat(Shards.of("order-1", null, 64)).isEqualTo(Shards.of("order-1", UUID.randomUUID(), 64));
        assertThat(Shards.of("order-1", null, 64)).isEqualTo(pinned("order-1"));
        int[] counts = new int[64];
        for (int i = 0; i < 64_000; i++) {
            counts[Shards.of("key-" + i, null, 64)]++;
        }
        for (int c : counts) {
            assertThat(c).isBetween(800, 1200);
        }
        UUID id = MessageIds.next();
        assertThat(Shards.of(null, id, 64)).isEqualTo(Shards.of(null, id, 64));
        assertThatThrownBy(() -> Shards.of("k", null, 0))
                .hasMessageContaining("shardCount must be between 1 and 4096, got 0");
    }

    private static int pinned(String key) {
        CRC32C crc = new CRC32C();
        crc.update(key.getBytes(StandardCharsets.UTF_8));
        return (int) (crc.getValue() % 64);
    }

    @Test
    void messagesAreValidated() {
        assertThatThrownBy(() -> OutboxMessage.of("bad topic!", "k", "t", "c", new byte[0]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a valid Kafka topic name");
        for (String bad : new String[] {"", "x".repeat(250), "a/b", "caf\u00e9", "a b", "a:b", "a@b", ".", ".."}) {
            assertThatThrownBy(() -> OutboxMessage.of(bad, "k", "t", "c", new byte[0]))
                    .as("topic '%s'", bad)
                    .hasMessageContaining("not a valid Kafka topic name");
        }
        for (String good : new String[] {"x".repeat(249), "Orders.v2_eu-1", "AZaz09._-"}) {
            assertThat(OutboxMessage.of(good, "k", "t", "c", new byte[0]).topic())
                    .isEqualTo(good);
        }
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "", "c", new byte[0]))
                .hasMessageContaining("type may not be empty");
        for (String blank : new String[] {"", " "}) {
            assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", blank, new byte[0]))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("contentType may not be blank");
        }
        Map<String, String> nullName = new HashMap<>();
        nullName.put(null, "v");
        assertThatThrownBy(() -> new OutboxMessage(null, "t", "k", "x", "c", null, nullName))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("headers may not have a null name");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader(OutboxHeaders.MESSAGE_ID, "x"))
                .hasMessageContaining("set by the relay itself");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withTraceparent("nope"))
                .hasMessageContaining("not a W3C trace context");
        // well formed, but forbidden by the specification: version ff, an all-zero trace id or parent id
        for (String forbidden : List.of(
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")) {
            assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withTraceparent(forbidden))
                    .as(forbidden)
                    .hasMessageContaining("not a W3C trace context");
        }
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader("Outbox-Message-Id", "x"))
                .as("a reserved name in another case")
                .hasMessageContaining("set by the relay itself");
        OutboxMessage ok = OutboxMessage.of("t", "k", "x", "c", null)
                .withTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assertThat(ok.headers())
                .containsEntry("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }

    /**
     * W3C Trace Context, "Versioning of traceparent": a version-00 parser reads a later version as
     * version 00. Its first 55 characters must be in version 00's format; a longer value must go on
     * with '-' at the 56th character, and anything may follow. Version 00 itself is exactly 55
     * characters; version ff, upper-case hex and all-zero ids are invalid in every version.
     */
    @Test
    void traceparentsOfALaterVersionAreReadAsVersion00() {
        String ids = "-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for (String accepted : List.of(
                "00" + ids,
                "01" + ids,
                "01" + ids + "-extra",
                "01" + ids + "-",
                "cc" + ids.replace("-01", "-09") + "-what-the-future-will-be-like")) {
            assertThat(OutboxMessage.isTraceparent(accepted)).as(accepted).isTrue();
            assertThat(OutboxMessage.of("t", "k", "x", "c", null)
                            .withTraceparent(accepted)
                            .headers())
                    .containsEntry(OutboxHeaders.TRACEPARENT, accepted);
        }
        for (String refused : List.of(
                "00" + ids + "-extra",
                "00" + ids + "x",
                "00" + ids + "-",
                "01" + ids + "x",
                "01" + ids + "0-extra",
                "01" + ids.substring(0, ids.length() - 1),
                "ff" + ids,
                "ff" + ids + "-extra",
                "0A" + ids,
                "0g" + ids,
                "00" + ids.toUpperCase(Locale.ROOT),
                "01" + ids.toUpperCase(Locale.ROOT) + "-extra",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "01-00000000000000000000000000000000-00f067aa0ba902b7-01-extra",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01-extra",
                "01_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "")) {
            assertThat(OutboxMessage.isTraceparent(refused)).as(refused).isFalse();
            assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withTraceparent(refused))
                    .as(refused)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("traceparent '" + refused + "' is not a W3C trace context:");
        }
        assertThat(OutboxMessage.isTraceparent(null)).isFalse();
    }

    /**
     * A key of "" is no key: every message with it would land on one partition, in one order with
     * all the others, which is almost always an id that was never set. It is refused; {@code null}
     * is the message without a key.
     */
    @Test
    void anEmptyKeyIsRefusedAndANullKeyIsNoKey() {
        assertThatThrownBy(() -> OutboxMessage.of("t", "", "x", "c", new byte[0]))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith(
                        "key is empty: pass null for a message without an ordering key, or the aggregate id");
        assertThatThrownBy(() -> new OutboxMessage(UUID.randomUUID(), "t", "", "x", "c", null, Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("key is empty");
        assertThatThrownBy(() -> JsonMessages.create().message("t", "", Map.of("a", 1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("key is empty");
        assertThat(OutboxMessage.of("t", null, "x", "c", new byte[0]).key()).isNull();
        assertThat(OutboxMessage.of("t", "0", "x", "c", new byte[0]).key()).isEqualTo("0");
    }

    /**
     * G7 starts at append: a key longer than the index of parked rows can hold would make its row
     * impossible to park, so it is refused, counted in UTF-8 bytes; a NUL character, which
     * PostgreSQL's text refuses inside the caller's transaction, is refused before it; and so is a
     * lone UTF-16 surrogate, which would be stored as {@code ?} (G3: two keys would share an order).
     */
    @Test
    void keysThatARowCouldNotBeParkedWithAndNulCharactersAreRefused() {
        String longest = "k".repeat(OutboxMessage.MAX_KEY_BYTES);
        assertThat(OutboxMessage.of("t", longest, "x", "c", null).key()).isEqualTo(longest);
        assertThatThrownBy(() -> OutboxMessage.of("t", longest + "k", "x", "c", null))
                .hasMessageContaining("2049 bytes in UTF-8, more than 2048");
        // 683 characters of three bytes each: within 2048 characters, past 2048 bytes
        assertThatThrownBy(() -> OutboxMessage.of("t", "\u20ac".repeat(683), "x", "c", null))
                .hasMessageContaining("2049 bytes in UTF-8");
        // a surrogate pair is four bytes, not six
        assertThat(OutboxMessage.of("t", "\ud83d\ude00".repeat(512), "x", "c", null)
                        .key())
                .hasSize(1024);
        assertThatThrownBy(() -> OutboxMessage.of("t", "\ud83d\ude00".repeat(512) + "k", "x", "c", null))
                .hasMessageContaining("2049 bytes");
        assertThatThrownBy(() -> OutboxMessage.of("t", "a\0b", "x", "c", null))
                .hasMessageContaining("key holds a NUL character");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x\0", "c", null))
                .hasMessageContaining("type holds a NUL character");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c\0", null))
                .hasMessageContaining("contentType holds a NUL character");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader("h", "v\0"))
                .hasMessageContaining("header 'h' holds a NUL character");
        // a lone surrogate has no UTF-8 form: pgjdbc would store it as '?', making two keys one
        assertThatThrownBy(() -> OutboxMessage.of("t", "order-\ud83d", "x", "c", null))
                .hasMessageContaining("key holds a lone UTF-16 surrogate at index 6 (U+D83D)");
        assertThatThrownBy(() -> OutboxMessage.of("t", "\ude00order", "x", "c", null))
                .hasMessageContaining("key holds a lone UTF-16 surrogate at index 0 (U+DE00)");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader("h", "\ude00\ud83d"))
                .hasMessageContaining("header 'h' holds a lone UTF-16 surrogate at index 0");
        // a trace context header in another case would escape the format check and sit next to the
        // inherited lower-case one on the record
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader("Traceparent", "junk"))
                .hasMessageStartingWith("header 'Traceparent' is a W3C trace context header spelt in another case:"
                        + " write it 'traceparent'");
        assertThatThrownBy(() -> OutboxMessage.of("t", "k", "x", "c", null).withHeader("TraceState", "a=b"))
                .hasMessageContaining("write it 'tracestate'");
        assertThat(OutboxMessage.of("t", "k", "x", "c", null)
                        .withHeader("tracestate", "a=b")
                        .headers())
                .containsEntry("tracestate", "a=b");
        assertThat(OutboxMessage.of("t", "k\ud83d\ude00", "x", "c", null)
                        .withHeader("h", "\ud83d\ude00")
                        .key())
                .isEqualTo("k\ud83d\ude00");
    }

    @Test
    void headerJsonRoundTrips() {
        Map<String, String> h = new LinkedHashMap<>();
        h.put("a", "plain");
        h.put("quote\"and\\slash", "line\nbreak\ttab\u0001 é");
        assertThat(Json.read(Json.write(h))).isEqualTo(h);
        assertThat(Json.read("{}")).isEmpty();
        assertThat(Json.read("{\"x\": \"y\", \"z\": \"\\u00e9\"}"))
                .containsEntry("x", "y")
                .containsEntry("z", "é");
        Map<String, List<String>> lists = new LinkedHashMap<>();
        lists.put("Set-Cookie", List.of("a=1", "b=\"2\""));
        lists.put("Empty", List.of());
        assertThat(Json.readLists(Json.writeLists(lists))).isEqualTo(lists);
        assertThat(Json.readLists("{\"A\": [\"1\", \"2\"], \"B\": []}"))
                .isEqualTo(Map.of("A", List.of("1", "2"), "B", List.of()));
        assertThatThrownBy(() -> Json.readLists("{\"A\": \"1\"}")).hasMessageContaining("expected [");
        assertThatThrownBy(() -> Json.read("{\"A\": \"1\"} x")).hasMessageContaining("trailing characters");
    }
}
