package dev.outbox.relay.process;

import dev.outbox.relay.Relay;
import java.util.Locale;
import java.util.Objects;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * One row of the settings table ({@link RelaySettings}): a name, from which the flag, the
 * environment variable and the properties-file key follow mechanically, a {@link Validator} that
 * both checks values and describes them, a typed default, a description, and, for a setting that
 * is a setting of the library's {@link Relay.Builder}, the setter that receives the value.
 *
 * <p>Immutable; the table builds each row with {@link #of} and the {@code with}-style methods
 * below.
 *
 * @param <T> the type of the value
 */
public final class Setting<T> {

    /** What a setting is about; orders {@code --help} and the README. */
    public enum Group {
        /** The PostgreSQL database that holds the outbox. */
        DATABASE,
        /** The Kafka cluster the relay publishes to. */
        KAFKA,
        /** How the relay publishes. */
        RELAY,
        /** The process around the relay: HTTP, logging, shutdown. */
        PROCESS
    }

    private final String name;
    private final Group group;
    private final Validator<T> validator;
    private final T defaultValue;
    private final boolean secret;
    private final String doc;
    private final BiConsumer<Relay.Builder, T> builderSetter;
    private final String differsFromBuilder;

    private Setting(
            String name,
            Group group,
            Validator<T> validator,
            T defaultValue,
            boolean secret,
            String doc,
            BiConsumer<Relay.Builder, T> builderSetter,
            String differsFromBuilder) {
        this.name = name;
        this.group = group;
        this.validator = validator;
        this.defaultValue = defaultValue;
        this.secret = secret;
        this.doc = doc;
        this.builderSetter = builderSetter;
        this.differsFromBuilder = differsFromBuilder;
    }

    /**
     * A required setting, without a default; give a default with {@link #defaultValue(Object)}.
     *
     * @param name the canonical name, lower-case words joined by {@code -}
     * @param group what it is about
     * @param validator checks and describes the values
     */
    static <T> Setting<T> of(String name, Group group, Validator<T> validator) {
        return new Setting<>(name, group, validator, null, false, "", null, null);
    }

    /** @return this setting with a default, which makes it optional */
    Setting<T> defaultValue(T value) {
        return new Setting<>(
                name, group, validator, Objects.requireNonNull(value), secret, doc, builderSetter, differsFromBuilder);
    }

    /**
     * A default other than the library builder's own {@code DEFAULT_} constant, which the test of the
     * table's agreement with the builder otherwise requires.
     *
     * @param why why the process differs from the library, for readers of the table
     */
    Setting<T> processDefault(T value, String why) {
        return new Setting<>(name, group, validator, Objects.requireNonNull(value), secret, doc, builderSetter, why);
    }

    /** @return this setting, its value never printed */
    Setting<T> neverPrinted() {
        return new Setting<>(name, group, validator, defaultValue, true, doc, builderSetter, differsFromBuilder);
    }

    /** @return this setting, handed to the library's builder by {@code setter} when the relay is built */
    Setting<T> appliedBy(BiConsumer<Relay.Builder, T> setter) {
        return new Setting<>(name, group, validator, defaultValue, secret, doc, setter, differsFromBuilder);
    }

    /** @return this setting with its description (what it does, why one would change it) */
    Setting<T> doc(String text) {
        return new Setting<>(name, group, validator, defaultValue, secret, text, builderSetter, differsFromBuilder);
    }

    /** @return the canonical name, e.g. {@code batch-size} */
    public String name() {
        return name;
    }

    /** @return what it is about */
    public Group group() {
        return group;
    }

    /** @return a short description of the accepted values, for the reference, e.g. {@code integer 1..10000} */
    public String type() {
        return validator.describe() + (secret ? " (secret)" : "");
    }

    /** @return the default in the accepted syntax, or {@code null} when there is none (a required setting) */
    public String defaultValue() {
        return defaultValue == null ? null : validator.format(defaultValue);
    }

    /** @return whether the relay cannot start without it */
    public boolean required() {
        return defaultValue == null;
    }

    /** @return whether its value is never printed */
    public boolean isSecret() {
        return secret;
    }

    /** @return what it does, why one would change it */
    public String doc() {
        return doc;
    }

    /** @return the check and description of its values */
    Validator<T> validator() {
        return validator;
    }

    /** @return turns the text into the typed value, or throws {@link IllegalArgumentException} */
    Function<String, T> parser() {
        return validator::parse;
    }

    /** @return the typed default, or {@code null} for a required setting */
    T typedDefault() {
        return defaultValue;
    }

    /** @return why its default differs from the library builder's, or {@code null} when it does not */
    String differsFromBuilder() {
        return differsFromBuilder;
    }

    /** @return whether the value goes to a setter of {@link Relay.Builder} */
    boolean isBuilderSetting() {
        return builderSetter != null;
    }

    /**
     * Hands {@code value} to the builder's setter; does nothing for a setting of the process only.
     *
     * @throws IllegalArgumentException when the builder refuses the value
     */
    void applyTo(Relay.Builder builder, Object value) {
        if (builderSetter != null) {
            @SuppressWarnings("unchecked")
            T typed = (T) value;
            builderSetter.accept(builder, typed);
        }
    }

    /**
     * @param text a value as given
     * @return it as it may appear in a message: {@code ****} for a secret, a URL without secrets
     */
    String shown(String text) {
        return secret ? "****" : text.isEmpty() ? "\"\"" : validator.redact(text);
    }

    /** @return the command-line flag, e.g. {@code --batch-size} */
    public String flag() {
        return "--" + name;
    }

    /** @return the environment variable, e.g. {@code OUTBOX_RELAY_BATCH_SIZE} */
    public String envVar() {
        return RelaySettings.ENV_PREFIX + name.toUpperCase(Locale.ROOT).replace('-', '_');
    }

    /** @return the properties-file key, e.g. {@code relay.batch.size} */
    public String fileKey() {
        return RelaySettings.FILE_PREFIX + name.replace('-', '.');
    }

    @Override
    public String toString() {
        return name;
    }
}
