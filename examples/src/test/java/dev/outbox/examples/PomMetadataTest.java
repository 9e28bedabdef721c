package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * The metadata a repository such as Maven Central asks of every published artifact: a name, a
 * description of its own, the project URL, licenses, developers and SCM. The parent POM carries
 * the shared part; each published module (the parent, the BOM, and every module the BOM manages)
 * must have the rest, and every URL must be the one the parent and the README name.
 */
class PomMetadataTest {
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @Test
    void everyPublishedModuleHasTheMetadataARepositoryAsksFor() throws Exception {
        Element parent = pom(ROOT.resolve("pom.xml"));
        String url = text(parent, "url");
        assertThat(url).as("the parent's <url>").startsWith("https://");
        assertShared(parent, "pom.xml", url);

        Map<String, Path> modules = new LinkedHashMap<>();
        for (Element module : children(child(parent, "modules"), "module")) {
            Path file = ROOT.resolve(module.getTextContent().trim()).resolve("pom.xml");
            modules.put(text(pom(file), "artifactId"), file);
        }
        Element bom = pom(modules.get("outbox-bom"));
        assertThat(child(bom, "parent"))
                .as("outbox-bom inherits nothing, so it states everything itself")
                .isNull();
        assertShared(bom, "outbox-bom/pom.xml", url);

        List<String> published = new ArrayList<>();
        for (Element dependency : children(child(child(bom, "dependencyManagement"), "dependencies"), "dependency")) {
            published.add(text(dependency, "artifactId"));
        }
        assertThat(published).as("modules the BOM manages").hasSizeGreaterThan(5);
        List<String> problems = new ArrayList<>();
        for (String artifactId : published) {
            Path file = modules.get(artifactId);
            if (file == null) {
                problems.add(artifactId + ": managed by the BOM but no module of the parent");
                continue;
            }
            Element module = pom(file);
            String where = ROOT.relativize(file).toString();
            if (text(module, "name").isBlank()) {
                problems.add(where + ": no <name>");
            }
            if (text(module, "description").isBlank()) {
                problems.add(where + ": no <description> of its own (it would inherit the parent's)");
            }
            Element moduleParent = child(module, "parent");
            if (moduleParent == null || !text(moduleParent, "artifactId").equals("outbox-parent")) {
                problems.add(where + ": does not inherit url, licenses, developers and scm from outbox-parent");
            }
            for (String own : List.of("url", "licenses", "developers", "scm")) {
                if (child(module, own) != null) {
                    problems.add(
                            where + ": declares its own <" + own + ">; keep it in the parent so all modules agree");
                }
            }
        }
        assertThat(problems).isEmpty();

        assertThat(Files.readString(ROOT.resolve("README.md")))
                .as("README.md names the project URL")
                .contains(url);
    }

    private static void assertShared(Element pom, String where, String url) {
        assertThat(text(pom, "url")).as(where + " <url>").isEqualTo(url);
        assertThat(text(pom, "description")).as(where + " <description>").isNotBlank();
        List<Element> licenses = children(child(pom, "licenses"), "license");
        assertThat(licenses).as(where + " <licenses>").isNotEmpty();
        licenses.forEach(l -> assertThat(text(l, "name") + text(l, "url"))
                .as(where + " license")
                .contains("Apache-2.0", "https://"));
        List<Element> developers = children(child(pom, "developers"), "developer");
        assertThat(developers).as(where + " <developers>").isNotEmpty();
        developers.forEach(
                d -> assertThat(text(d, "name")).as(where + " developer name").isNotBlank());
        Element scm = child(pom, "scm");
        assertThat(scm).as(where + " <scm>").isNotNull();
        assertThat(text(scm, "url")).as(where + " <scm><url>").isEqualTo(url);
        assertThat(text(scm, "connection")).as(where + " <scm><connection>").isEqualTo("scm:git:" + url + ".git");
        assertThat(text(scm, "developerConnection"))
                .as(where + " <scm><developerConnection>")
                .startsWith("scm:git:");
    }

    private static Element pom(Path file) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return factory.newDocumentBuilder().parse(file.toFile()).getDocumentElement();
    }

    /** @return the direct child element with that name, or null */
    private static Element child(Element parent, String name) {
        if (parent == null) {
            return null;
        }
        List<Element> found = children(parent, name);
        return found.isEmpty() ? null : found.get(0);
    }

    private static List<Element> children(Element parent, String name) {
        List<Element> found = new ArrayList<>();
        if (parent == null) {
            return found;
        }
        NodeList nodes = parent.getChildNodes();
        for (int i = 0; i < nodes.getLength(); i++) {
            Node n = nodes.item(i);
            if (n instanceof Element e && e.getTagName().equals(name)) {
                found.add(e);
            }
        }
        return found;
    }

    private static String text(Element parent, String name) {
        Element e = child(parent, name);
        return e == null ? "" : e.getTextContent().trim();
    }
}
