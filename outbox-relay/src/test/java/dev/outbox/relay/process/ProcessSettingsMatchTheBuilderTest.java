package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.core.retry.Backoff;
import dev.outbox.relay.Relay;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The process's settings table and the library's {@link Relay.Builder} agree: every {@code
 * DEFAULT_}, {@code MIN_} and {@code MAX_} constant of the builder is the default or bound of the
 * table's setting of that name, and the builder's setters accept exactly the table's range.
 */
class ProcessSettingsMatchTheBuilderTest {

    private static Relay.Builder valid() {
        return Relay.builder()
                .dataSource(new PGSimpleDataSource())
                .producerProperties(Map.of("bootstrap.servers", "localhost:9092"));
    }

    /** A builder constant, e.g. {@code MAX_BATCH_SIZE}: kind {@code MAX_}, setting {@code batch-size}. */
    private record Constant(String field, String kind, String setting, Object value) {}

    private static List<Constant> builderConstants() throws IllegalAccessException {
        List<Constant> constants = new ArrayList<>();
        for (Field f : Relay.Builder.class.getFields()) {
            if (!Modifier.isStatic(f.getModifiers())) {
                continue;
            }
            String n = f.getName();
            String kind = n.startsWith("DEFAULT_")
                    ? "DEFAULT_"
                    : n.startsWith("MIN_") ? "MIN_" : n.startsWith("MAX_") ? "MAX_" : null;
            assertThat(kind)
                    .as("builder constant %s is a DEFAULT_, MIN_ or MAX_", n)
                    .isNotNull();
            String setting = n.substring(kind.length()).toLowerCase(Locale.ROOT).replace('_', '-');
            constants.add(new Constant(n, kind, setting, f.get(null)));
        }
        return constants;
    }

    @Test
    void everyDefaultAndBoundOfTheBuilderIsTheTables() throws Exception {
        List<Constant> constants = builderConstants();
        assertThat(constants)
                .extracting(Constant::field)
                .contains("DEFAULT_BATCH_SIZE", "MIN_BATCH_SIZE", "MAX_BATCH_SIZE");
        for (Constant c : constants) {
            switch (c.field()) {
                case "DEFAULT_BACKOFF" -> {
                    // one builder setting, two process settings
                    var backoff = (Backoff) c.value();
                    assertThat(RelaySettings.BACKOFF_BASE.typedDefault()).isEqualTo(backoff.base());
                    assertThat(RelaySettings.BACKOFF_CAP.typedDefault()).isEqualTo(backoff.cap());
                    continue;
                }
                case "MAX_INSTANCE_ID_LENGTH" -> {
                    int max = (Integer) c.value();
                    Validator<String> id = RelaySettings.INSTANCE_ID.validator();
                    assertThat(id.parse("r".repeat(max))).hasSize(max);
                    assertThatThrownBy(() -> id.parse("r".repeat(max + 1)))
                            .isInstanceOf(IllegalArgumentException.class);
                    continue;
                }
                default -> {}
            }
            Optional<Setting<?>> found = RelaySettings.byName(c.setting());
            assertThat(found)
                    .as(
                            "the builder's %s belongs to a process setting %s; add it to RelaySettings",
                            c.field(), c.setting())
                    .isPresent();
            Setting<?> s = found.get();
            switch (c.kind()) {
                case "DEFAULT_" -> {
                    if (s.differsFromBuilder() == null) {
                        assertThat((Object) s.typedDefault())
                                .as("default of %s, the builder's %s", s, c.field())
                                .isEqualTo(c.value());
                    } else {
                        assertThat((Object) s.typedDefault())
                                .as("%s declares a default of its own", s)
                                .isNotEqualTo(c.value());
                        assertThat(s.differsFromBuilder()).isNotBlank();
                    }
                }
                case "MIN_" ->
                    assertThat(bounded(s).min())
                            .as("smallest %s, the builder's %s", s, c.field())
                            .isEqualTo(c.value());
                default ->
                    assertThat(bounded(s).max())
                            .as("largest %s, the builder's %s", s, c.field())
                            .isEqualTo(c.value());
            }
        }
    }

    @Test
    void everySettingOfTheTableIsListed() throws Exception {
        for (Field f : RelaySettings.class.getFields()) {
            if (f.getType() == Setting.class) {
                assertThat(RelaySettings.ALL)
                        .as("RelaySettings.ALL lists %s: wrap its entry in add(..)", f.getName())
                        .contains((Setting<?>) f.get(null));
            }
        }
    }

    @Test
    void theBuilderAcceptsExactlyTheTablesRangeAndItsDefault() {
        int checked = 0;
        for (Setting<?> s : RelaySettings.ALL) {
            if (!s.isBuilderSetting()) {
                continue;
            }
            assertThatCode(() -> s.applyTo(valid(), s.typedDefault()))
                    .as("the builder takes the default of %s", s)
                    .doesNotThrowAnyException();
            if (s.validator() instanceof Validator.Bounded<?> b) {
                assertThatCode(() -> s.applyTo(valid(), b.min()))
                        .as("the builder takes the smallest %s", s)
                        .doesNotThrowAnyException();
                assertThatCode(() -> s.applyTo(valid(), b.max()))
                        .as("the builder takes the largest %s", s)
                        .doesNotThrowAnyException();
                assertThatThrownBy(() -> s.applyTo(valid(), step(b.min(), -1)))
                        .as("the builder refuses below %s", s)
                        .isInstanceOf(IllegalArgumentException.class);
                assertThatThrownBy(() -> s.applyTo(valid(), step(b.max(), 1)))
                        .as("the builder refuses above %s", s)
                        .isInstanceOf(IllegalArgumentException.class);
                checked++;
            }
        }
        assertThat(checked).as("bounded settings of the builder").isGreaterThanOrEqualTo(7);
        RelaySettings.Values defaults = RelaySettings.resolve(
                Map.of("jdbc-url", "jdbc:postgresql://db/x", "bootstrap-servers", "k:9092"),
                Map.of(),
                Map.of(),
                "",
                true);
        Relay.Builder b = valid();
        defaults.applyTo(b);
        try (Relay relay = b.build()) {
            assertThat(relay).isNotNull();
        }
    }

    private static Object step(Object bound, int direction) {
        return bound instanceof Duration d ? d.plusMillis(direction) : (Integer) bound + direction;
    }

    private static Validator.Bounded<?> bounded(Setting<?> s) {
        assertThat(s.validator()).as("%s has a range", s).isInstanceOf(Validator.Bounded.class);
        return (Validator.Bounded<?>) s.validator();
    }
}
