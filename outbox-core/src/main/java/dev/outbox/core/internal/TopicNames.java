package dev.outbox.core.internal;

/** Kafka's rule for topic names, shared by the producer's messages and the consumer's settings. Not part of the public API. */
public final class TopicNames {
    /** The longest topic name Kafka accepts. */
    public static final int MAX_LENGTH = 249;

    /** The rule, for error messages. */
    public static final String RULE =
            "1 to " + MAX_LENGTH + " characters from a-z A-Z 0-9 . _ -, other than \".\" and \"..\"";

    private TopicNames() {}

    /**
     * @param topic a topic name
     * @return whether Kafka accepts it as a topic name: {@link #RULE} (checked per character: a regular
     *     expression would be compiled for every message appended)
     */
    public static boolean isValid(String topic) {
        if (topic.isEmpty() || topic.length() > MAX_LENGTH || topic.equals(".") || topic.equals("..")) {
            return false;
        }
        for (int i = 0; i < topic.length(); i++) {
            char c = topic.charAt(i);
            boolean legal = (c >= 'a' && c <= 'z')
                    || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9')
                    || c == '.'
                    || c == '_'
                    || c == '-';
            if (!legal) {
                return false;
            }
        }
        return true;
    }
}
