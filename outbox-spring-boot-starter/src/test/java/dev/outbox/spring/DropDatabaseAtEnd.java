package dev.outbox.spring;

import dev.outbox.testkit.TestDatabase;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Drops a test class's database at the end of the test run, after Spring closed the class's
 * context (its pool and the embedded relay), instead of under their feet in {@code @AfterAll}.
 * The class names its database in a static field {@code DB}.
 */
final class DropDatabaseAtEnd implements BeforeAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        TestDatabase db = (TestDatabase)
                context.getRequiredTestClass().getDeclaredField("DB").get(null);
        context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).put(db.name(), db);
    }
}
