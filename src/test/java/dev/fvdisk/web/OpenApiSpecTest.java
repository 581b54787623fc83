package dev.fvdisk.web;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.swagger.v3.oas.models.OpenAPI;
import io.swagger.v3.oas.models.Operation;
import io.swagger.v3.oas.models.PathItem;
import io.swagger.v3.parser.OpenAPIV3Parser;
import io.swagger.v3.parser.core.models.ParseOptions;
import io.swagger.v3.parser.core.models.SwaggerParseResult;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The committed contract parses without a single message and keeps our writing habits. */
class OpenApiSpecTest {

  static final Path SPEC = Path.of("openapi", "openapi.yaml");

  private static SwaggerParseResult parse() {
    ParseOptions options = new ParseOptions();
    options.setResolve(true);
    return new OpenAPIV3Parser().readLocation(SPEC.toUri().toString(), null, options);
  }

  @Test
  void spec_parses_without_messages() {
    SwaggerParseResult result = parse();
    assertEquals(List.of(), result.getMessages());
    assertNotNull(result.getOpenAPI());
  }

  @Test
  void every_operation_has_a_unique_operation_id_and_one_tag() {
    OpenAPI api = parse().getOpenAPI();
    Set<String> ids = new HashSet<>();
    for (Map.Entry<String, PathItem> path : api.getPaths().entrySet()) {
      for (Map.Entry<PathItem.HttpMethod, Operation> op :
          path.getValue().readOperationsMap().entrySet()) {
        String where = op.getKey() + " " + path.getKey();
        assertNotNull(op.getValue().getOperationId(), where + " has no operationId");
        assertTrue(ids.add(op.getValue().getOperationId()), where + " repeats an operationId");
        assertEquals(1, op.getValue().getTags().size(), where + " needs exactly one tag");
      }
    }
  }

  @Test
  void problem_responses_are_shared_and_problem_json() {
    OpenAPI api = parse().getOpenAPI();
    api.getComponents()
        .getResponses()
        .forEach(
            (name, response) -> {
              assertTrue(
                  response.getContent().containsKey("application/problem+json"),
                  name + " must be application/problem+json");
              assertFalse(response.getContent().containsKey("application/json"), name);
            });
  }
}
