package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The README's settings reference is generated from {@link RelaySettings}; this test keeps the copy current. */
class ReadmeSettingsReferenceTest {
    static final String START = "<!-- settings:start -->\n";
    static final String END = "<!-- settings:end -->";

    @Test
    void readmeReferenceEqualsTheSettingsTable() throws Exception {
        Path readme = Path.of("README.md");
        String text = Files.readString(readme);
        int start = text.indexOf(START);
        int end = text.indexOf(END);
        assertThat(start).as("README.md has the marker %s", START.strip()).isNotNegative();
        assertThat(end).as("README.md has the marker %s", END).isGreaterThan(start);
        String inReadme = text.substring(start + START.length(), end);
        String generated = RelaySettings.markdownReference();
        if (!inReadme.equals(generated)) {
            Path fresh = Path.of("target", "settings-reference.md");
            Files.createDirectories(fresh.getParent());
            Files.writeString(fresh, generated);
            assertThat(inReadme)
                    .as(
                            "README.md's settings reference is stale: replace the text between the markers with %s"
                                    + " (or the output of java -cp ... dev.outbox.relay.process.RelaySettings)",
                            fresh.toAbsolutePath())
                    .isEqualTo(generated);
        }
    }
}
