package dev.outbox.examples.boot;

import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.outbox.archunit.IdempotencyRules;
import org.junit.jupiter.api.Test;

/**
 * The Spring Boot example passes the build-time idempotency rules a platform team adds to every
 * service: its listener writes through the dedup claim, it retries nothing without a budget, it
 * makes no unprotected outbound POST and checks no key with select-then-insert.
 */
class BuildRulesTest {
    @Test
    void theExampleFollowsEveryRule() {
        IdempotencyRules.all()
                .check(new ClassFileImporter()
                        .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                        .importPackages("dev.outbox.examples.boot"));
    }
}
