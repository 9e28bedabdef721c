package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.SplittableRandom;
import java.util.UUID;
import org.apache.kafka.common.header.Headers;
import org.junit.jupiter.api.Test;

/**
 * The headers of a record: outbox-created-at is written without a DateTimeFormatter per record and
 * must match one; the relay's own names replace a row's.
 */
class CreatedAtHeaderTest {
    private static final DateTimeFormatter EXPECTED =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC);

    @Test
    void matchesTheFormatterInUtcForAnyOffset() {
        SplittableRandom random = new SplittableRandom(42);
        ZoneOffset[] offsets = {
            ZoneOffset.UTC, ZoneOffset.ofHours(2), ZoneOffset.ofHoursMinutes(-9, -30), ZoneOffset.MAX
        };
        for (int i = 0; i < 10_000; i++) {
            Instant instant = Instant.ofEpochSecond(
                            random.nextLong(-62_000_000_000L, 253_000_000_000L), random.nextInt(1_000_000_000))
                    .truncatedTo(ChronoUnit.MICROS);
            OffsetDateTime t = OffsetDateTime.ofInstant(instant, offsets[i % offsets.length]);
            assertThat(new String(RecordMapper.createdAt(t), StandardCharsets.US_ASCII))
                    .isEqualTo(EXPECTED.format(t));
        }
    }

    @Test
    void padsEveryField() {
        OffsetDateTime t = OffsetDateTime.of(7, 1, 2, 3, 4, 5, 6_000, ZoneOffset.UTC);
        assertThat(new String(RecordMapper.createdAt(t), StandardCharsets.US_ASCII))
                .isEqualTo("0007-01-02T03:04:05.000006Z");
    }

    /**
     * The relay's own headers replace a row's headers of the same lower-case names; other spellings,
     * which a row appended before the names were reserved in any case may hold, pass as they always did.
     */
    @Test
    void onlyTheRelaysOwnHeaderNamesAreReplaced() {
        OutboxRow row = new OutboxRow(
                7,
                UUID.randomUUID(),
                "orders",
                "k",
                "OrderPlaced",
                "application/json",
                "{\"content-type\": \"text/plain\", \"Content-Type\": \"kept\", \"x\": \"y\"}",
                new byte[0],
                OffsetDateTime.now(ZoneOffset.UTC));
        Headers headers = RecordMapper.record(row, 0L).headers();
        assertThat(headers.headers("content-type"))
                .extracting(h -> new String(h.value(), StandardCharsets.UTF_8))
                .containsExactly("application/json");
        assertThat(new String(headers.lastHeader("Content-Type").value(), StandardCharsets.UTF_8))
                .isEqualTo("kept");
        assertThat(new String(headers.lastHeader("x").value(), StandardCharsets.UTF_8))
                .isEqualTo("y");
    }

    @Test
    void fallsBackOutsideFourDigitYears() {
        OffsetDateTime t = OffsetDateTime.of(12_345, 6, 7, 8, 9, 10, 0, ZoneOffset.UTC);
        assertThat(new String(RecordMapper.createdAt(t), StandardCharsets.US_ASCII))
                .isEqualTo(EXPECTED.format(t));
    }
}
