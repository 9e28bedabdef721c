package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The outbox-created-at header is written without a DateTimeFormatter per record; it must match one. */
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

    @Test
    void fallsBackOutsideFourDigitYears() {
        OffsetDateTime t = OffsetDateTime.of(12_345, 6, 7, 8, 9, 10, 0, ZoneOffset.UTC);
        assertThat(new String(RecordMapper.createdAt(t), StandardCharsets.US_ASCII))
                .isEqualTo(EXPECTED.format(t));
    }
}
