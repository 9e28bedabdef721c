package dev.outbox.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The code style rule that the formatter cannot check: a type is imported and written by its simple
 * name; a fully qualified name in code is only for a clash between two types of the same simple name.
 * Checked over the sources of every module of the project (test-support is built early, so the build
 * stops here before the other modules compile).
 */
class FullyQualifiedNamesTest {

    @Test
    void noModuleWritesOutATypeNameThatAnImportWouldShorten() {
        Path root = JavaSources.projectRoot();
        List<String> found = FullyQualifiedNames.findInTree(root);
        assertThat(found)
                .as("fully qualified type names in code below %s; import the type and write its simple name", root)
                .isEmpty();
    }

    @Test
    void findsQualifiedNamesInCodeOnly() {
        String source = """
                package dev.example;

                import java.util.List;

                /** Uses {@link java.util.HashSet}. */
                class Example {
                    // a java.util.TreeSet in a comment
                    String text = "java.util.TreeMap";
                    char c = '"';
                    List<String> names = new java.util.ArrayList<>();
                    Object o = java.util.Collections.unmodifiableList(names);
                }
                """;

        assertThat(FullyQualifiedNames.findIn(source, Set.of()))
                .containsExactly(
                        "10: java.util.ArrayList (import java.util.ArrayList and write ArrayList)",
                        "11: java.util.Collections (import java.util.Collections and write Collections)");
    }

    @Test
    void acceptsAQualifiedNameWhoseSimpleNameIsTaken() {
        String source = """
                package dev.example;

                import org.slf4j.Logger;

                class Example {
                    Logger log;
                    ch.qos.logback.classic.Logger logback;   // clashes with an import
                    dev.other.Metrics metrics;               // clashes with a type of the package
                    dev.other.String text;                   // clashes with java.lang.String
                    java.util.List<String> a;                // two Lists written out: one could be imported,
                    java.awt.List b;                         // but not both
                }
                """;

        assertThat(FullyQualifiedNames.findIn(source, Set.of("Metrics"))).isEmpty();
        assertThat(FullyQualifiedNames.findIn(source.replace("java.awt.List", "Object"), Set.of("Metrics")))
                .containsExactly("10: java.util.List (import java.util.List and write List)");
    }
}
