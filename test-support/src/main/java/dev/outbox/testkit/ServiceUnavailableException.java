package dev.outbox.testkit;

import java.util.List;

/**
 * Neither a configured, a local, a containerised nor an embedded service could be reached. The
 * message lists every attempt with its error and says how to fix it.
 */
public final class ServiceUnavailableException extends RuntimeException {

    ServiceUnavailableException(String service, List<String> attempts, String fix) {
        super(message(service, attempts, fix));
    }

    private static String message(String service, List<String> attempts, String fix) {
        StringBuilder sb = new StringBuilder("No ").append(service).append(" could be reached. Tried:");
        for (int i = 0; i < attempts.size(); i++) {
            sb.append("\n  ").append(i + 1).append(". ").append(attempts.get(i));
        }
        return sb.append("\nFix: ").append(fix).toString();
    }
}
