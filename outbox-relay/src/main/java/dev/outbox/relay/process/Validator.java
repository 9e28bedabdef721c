package dev.outbox.relay.process;

/**
 * Checks one setting's text and says what it accepts, from the same definition: the range a
 * {@link #parse} enforces is the range {@link #describe} prints in {@code --help} and the README.
 *
 * @param <T> the typed value
 */
interface Validator<T> {

    /**
     * @param text the value as given, never {@code null}
     * @return the typed value, never {@code null}
     * @throws IllegalArgumentException whose message says what the value must be ("must be between
     *     1 and 10000")
     */
    T parse(String text);

    /** @return what the setting accepts, for the reference, e.g. {@code integer 1..10000} */
    String describe();

    /**
     * @param value a typed value
     * @return it in the syntax {@link #parse} accepts, e.g. {@code 30s}
     */
    default String format(T value) {
        return value.toString();
    }

    /**
     * @param text a value as given
     * @return it as it may appear in a message or a log line (a URL without its secret parameters)
     */
    default String redact(String text) {
        return text;
    }

    /**
     * A validator with a smallest and a largest value, which the test of the table's agreement with
     * the library's builder compares with the builder's own bounds.
     *
     * @param <T> the typed value
     */
    interface Bounded<T extends Comparable<T>> extends Validator<T> {
        /** @return the smallest accepted value */
        T min();

        /** @return the largest accepted value */
        T max();
    }
}
