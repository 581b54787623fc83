package dev.fvdisk.web;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.hamcrest.Matchers.equalTo;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.logging.LoggingPreferences;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The console in a real headless Chromium against the started service (no tokens, so the loopback
 * client may do everything): what the API holds shows up on the page, and what the page does
 * reaches the API. Every wait is an explicit one for a state of the page; no test measures time.
 * Screenshots land in {@code target/console-screenshots/}.
 *
 * <p>Debian's {@code chromium} and {@code chromium-driver} must be installed. Without them the
 * tests are skipped, except in CI: {@code .ci/run} installs both and sets {@code
 * FVDISK_REQUIRE_BROWSER}, and there a missing browser fails them.
 */
class ConsoleBrowserIntegrationTest extends ApiTestSupport {

  private static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
  private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
  private static final Path SCREENSHOTS = Path.of("target", "console-screenshots");
  private static final Duration PAGE_WAIT = Duration.ofSeconds(30);
  private static final Duration PREFETCH_WAIT = Duration.ofSeconds(120);

  private static ChromeDriver browser;
  private static WebDriverWait waitForPage;

  @BeforeAll
  static void startBrowser() throws IOException {
    boolean installed = Files.isExecutable(CHROMEDRIVER) && Files.isExecutable(CHROMIUM);
    if (System.getenv("FVDISK_REQUIRE_BROWSER") != null) {
      assertThat(installed)
          .as("FVDISK_REQUIRE_BROWSER is set but %s or %s is missing", CHROMIUM, CHROMEDRIVER)
          .isTrue();
    }
    assumeTrue(installed, "chromium and chromium-driver are not installed");
    ChromeOptions options = new ChromeOptions();
    // Both paths given, so Selenium never looks for (or downloads) a browser or driver of its own.
    options.setBinary(CHROMIUM.toFile());
    options.addArguments(
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800");
    LoggingPreferences logs = new LoggingPreferences();
    logs.enable(LogType.BROWSER, Level.ALL);
    options.setCapability("goog:loggingPrefs", logs);
    ChromeDriverService service =
        new ChromeDriverService.Builder()
            .usingDriverExecutable(CHROMEDRIVER.toFile())
            .usingAnyFreePort()
            .build();
    browser = new ChromeDriver(service, options);
    waitForPage = new WebDriverWait(browser, PAGE_WAIT);
    Files.createDirectories(SCREENSHOTS);
  }

  @AfterAll
  static void stopBrowser() {
    if (browser != null) {
      browser.quit();
    }
  }

  /**
   * Every test ends with a screenshot, and with no Content-Security-Policy refusal in the browser's
   * log: an inline style or script the policy blocked would leave a page that looks half right.
   */
  @AfterEach
  void screenshotAndPolicyCheck(TestInfo test) {
    if (browser == null) {
      return;
    }
    screenshot(test.getTestMethod().orElseThrow().getName());
    List<String> refusals = new ArrayList<>();
    for (LogEntry entry : browser.manage().logs().get(LogType.BROWSER)) {
      if (entry.getMessage().contains("Content Security Policy")) {
        refusals.add(entry.getMessage());
      }
    }
    assertThat(refusals).as("CSP refusals in the browser's log").isEmpty();
  }

  @Test
  void lists_images_created_through_the_api_with_their_figures() {
    String small = createImage("console-list", 4 * MIB, MIB);
    String large = createImage("console-list", 8 * MIB, MIB);
    write(large, 0, pattern((int) MIB, 1));

    openConsole();
    WebElement smallRow = row(small);
    WebElement largeRow = row(large);
    assertThat(smallRow.findElement(By.cssSelector(".size-cell")).getText()).isEqualTo("4.00 MiB");
    assertThat(largeRow.findElement(By.cssSelector(".size-cell")).getText()).isEqualTo("8.00 MiB");
    assertThat(largeRow.findElement(By.cssSelector(".used-cell")).getText())
        .isEqualTo("1.00 MiB (12.5%)");
    // The used bar of the larger image is an eighth of its track.
    double fraction =
        widthRatio(
            largeRow.findElement(By.cssSelector(".used-cell .fill")),
            largeRow.findElement(By.cssSelector(".used-cell .bar")));
    assertThat(fraction).isCloseTo(1.0 / 8, within(0.01));
    assertThat(text("#health-status")).isEqualTo("UP");
    assertThat(text("#storage-figures")).contains("Available").contains("Leaked chunks");
    // The tests' service listens for NBD on a free port, so its session gauge exists.
    assertThat(text("#nbd-figures")).contains("Open NBD sessions");
  }

  @Test
  void shows_a_clone_under_its_base_and_a_snapshot_clone_under_its_snapshot() {
    String golden = readOnlyBase(4 * MIB);
    String clone = createClone(golden, false);
    String image = createImage("console-snapped", 4 * MIB, MIB);
    takeSnapshot(image, "s1");
    String snapshotClone = createClone(image + "@s1", false);

    openConsole();
    waitForPage.until(
        ExpectedConditions.presenceOfElementLocated(
            By.cssSelector(
                "#chains li[data-image='" + golden + "'] > ul > li[data-image='" + clone + "']")));
    waitForPage.until(
        ExpectedConditions.presenceOfElementLocated(
            By.cssSelector(
                "#chains li[data-image='"
                    + image
                    + "'] li[data-snapshot='"
                    + image
                    + "@s1'] li[data-image='"
                    + snapshotClone
                    + "']")));
    // Once, under its base only, not also as a chain of its own.
    assertThat(browser.findElements(By.cssSelector("#chains li[data-image='" + clone + "']")))
        .hasSize(1);
    assertThat(row(golden).findElement(By.cssSelector(".marks-cell")).getText())
        .contains("read-only")
        .contains("base of 1");
    assertThat(row(clone).findElement(By.cssSelector(".marks-cell")).getText())
        .contains("clone of " + golden);
    scrollTo("#chains-heading");
  }

  @Test
  void shows_prefetch_progress_moving_to_done() {
    String golden = readOnlyBase(8 * MIB);
    String clone = createClone(golden, false);

    openConsole();
    WebElement progress = row(clone).findElement(By.cssSelector("progress"));
    assertThat(row(clone).findElement(By.cssSelector(".prefetch-state")).getText())
        .isEqualTo("disabled");
    assertThat(progress.getDomProperty("value")).isEqualTo("0");

    choose(clone);
    click("#toggle-prefetch");
    Set<String> seen = new LinkedHashSet<>();
    new WebDriverWait(browser, PREFETCH_WAIT)
        .until(
            page -> {
              String shown = text("#images-body tr[data-image='" + clone + "'] .prefetch-cell");
              seen.add(shown);
              return shown.startsWith("done");
            });
    System.out.println("prefetch of " + clone + " as the console showed it: " + seen);
    WebElement done = row(clone).findElement(By.cssSelector("progress"));
    assertThat(done.getDomProperty("value")).isEqualTo(done.getDomProperty("max"));
    assertThat(text("#images-body tr[data-image='" + clone + "'] .prefetch-detail"))
        .contains("100.0%");
    api().get(IMAGES + "/" + clone).then().statusCode(200).body("prefetch.state", equalTo("done"));
  }

  @Test
  void draws_the_map_strip_in_proportion_to_the_extents() {
    // Four chunks of 1 MiB, the second one written: zero, data, zero in a quarter, a quarter and
    // a half of the strip.
    String image = createImage("console-map", 4 * MIB, MIB);
    write(image, MIB, pattern((int) MIB, 5));

    openConsole();
    choose(image);
    List<Map<String, Object>> segments = waitForSegments(3);
    assertThat(segments).extracting(s -> s.get("state")).containsExactly("zero", "data", "zero");
    Map<String, Object> data = segments.get(1);
    assertThat(number(data, "fraction")).isCloseTo(0.25, within(0.005));
    assertThat(number(data, "start")).isCloseTo(0.25, within(0.005));
    assertThat(number(segments.get(2), "fraction")).isCloseTo(0.5, within(0.005));
    assertThat(text("#map-legend")).contains("data (held by the image): 1.00 MiB (25.0%)");

    // A clone of it with the last quarter written: what it reads from the base, then its own data.
    markReadOnly(image);
    String clone = createClone(image, false);
    write(clone, 3 * MIB, pattern((int) MIB, 6));
    choose(clone);
    List<Map<String, Object>> cloneSegments = waitForSegments(2);
    assertThat(cloneSegments).extracting(s -> s.get("state")).containsExactly("base", "data");
    assertThat(number(cloneSegments.get(0), "fraction")).isCloseTo(0.75, within(0.005));
    assertThat(number(cloneSegments.get(1), "fraction")).isCloseTo(0.25, within(0.005));
    scrollTo("#map-heading");
  }

  @Test
  void creates_and_deletes_an_image_through_the_console() {
    String name = uniqueName("console-made");
    openConsole();
    type("#create-name", name);
    type("#create-size", "3M");
    click("#create-form button[type=submit]");
    waitForPage.until(
        ExpectedConditions.textToBePresentInElementLocated(
            By.id("create-result"), name + " created"));
    row(name);
    api()
        .get(IMAGES + "/" + name)
        .then()
        .statusCode(200)
        .body("sizeBytes", equalTo((int) (3 * MIB)));

    choose(name);
    click("#delete");
    WebElement dialog =
        waitForPage.until(ExpectedConditions.visibilityOfElementLocated(By.id("delete-dialog")));
    assertThat(dialog.getText()).contains("Delete image " + name + "?");
    screenshot("delete-confirmation");
    click("#delete-confirm");
    waitForPage.until(
        ExpectedConditions.invisibilityOfElementLocated(
            By.cssSelector("#images-body tr[data-image='" + name + "']")));
    waitForPage.until(ExpectedConditions.textToBe(By.id("images-result"), name + " is deleted."));
    api().get(IMAGES + "/" + name).then().statusCode(404);
  }

  @Test
  void a_refused_delete_shows_the_problem_detail() {
    String golden = readOnlyBase(4 * MIB);
    String clone = createClone(golden, false);
    // The same refusal as the console will get, asked for directly; it changes nothing.
    String detail =
        api().delete(IMAGES + "/" + golden).then().statusCode(409).extract().path("detail");
    assertThat(detail).contains(clone);

    openConsole();
    choose(golden);
    click("#delete");
    waitForPage.until(ExpectedConditions.visibilityOfElementLocated(By.id("delete-dialog")));
    click("#delete-confirm");
    waitForPage.until(
        ExpectedConditions.textToBePresentInElementLocated(By.id("detail-error"), detail));
    assertThat(text("#detail-error")).startsWith("409 ");
    assertThat(row(golden).isDisplayed()).isTrue();
    api().get(IMAGES + "/" + golden).then().statusCode(200);
    scrollTo("#detail-error");
  }

  @Test
  void works_from_the_keyboard_in_a_narrow_window() {
    String image = createImage("console-keys", 2 * MIB, MIB);
    Dimension wide = browser.manage().window().getSize();
    browser.manage().window().setSize(new Dimension(420, 800));
    try {
      openConsole();
      row(image);
      Object overflow =
          browser.executeScript(
              "return document.documentElement.scrollWidth - document.documentElement.clientWidth;");
      assertThat(((Number) overflow).intValue()).as("horizontal overflow in pixels").isZero();

      // Tab reaches the skip link first; it leads to the images, whose first button opens one.
      new Actions(browser).sendKeys(Keys.TAB).perform();
      assertThat(browser.switchTo().activeElement().getText()).isEqualTo("Skip to the images");
      new Actions(browser).sendKeys(Keys.ENTER).perform();
      new Actions(browser).sendKeys(Keys.TAB).perform();
      WebElement focused = browser.switchTo().activeElement();
      assertThat(focused.getDomAttribute("class")).isEqualTo("image-select");
      String chosen = focused.getText();
      new Actions(browser).sendKeys(Keys.ENTER).perform();
      waitForPage.until(
          ExpectedConditions.textToBe(By.id("detail-heading"), "Image details: " + chosen));
      assertThat(browser.switchTo().activeElement().getDomAttribute("id"))
          .isEqualTo("detail-heading");
      screenshot("narrow-window");
    } finally {
      browser.manage().window().setSize(wide);
    }
  }

  // ---- the API side ----

  /** A read-only image of {@code sizeBytes}, written whole, so that a prefetch has data to copy. */
  private String readOnlyBase(long sizeBytes) {
    String base = createImage("console-golden", sizeBytes, MIB);
    writeBulk(base, 0, pattern((int) sizeBytes, 3));
    markReadOnly(base);
    return base;
  }

  private String createClone(String base, boolean prefetch) {
    String clone = uniqueName("console-clone");
    api()
        .contentType("application/json")
        .body(Map.of("name", clone, "base", base, "prefetch", Map.of("enabled", prefetch)))
        .post(IMAGES)
        .then()
        .statusCode(201);
    return clone;
  }

  // ---- the page side ----

  private void openConsole() {
    browser.get("http://127.0.0.1:" + port + "/console/");
    waitForPage.until(
        ExpectedConditions.textMatches(By.id("last-refresh"), Pattern.compile("^refreshed")));
  }

  private WebElement row(String name) {
    return waitForPage.until(
        ExpectedConditions.visibilityOfElementLocated(
            By.cssSelector("#images-body tr[data-image='" + name + "']")));
  }

  private void choose(String name) {
    row(name).findElement(By.cssSelector(".image-select")).click();
    waitForPage.until(
        ExpectedConditions.textToBe(By.id("detail-heading"), "Image details: " + name));
  }

  private void click(String css) {
    waitForPage.until(ExpectedConditions.elementToBeClickable(By.cssSelector(css))).click();
  }

  private void type(String css, String text) {
    WebElement field = browser.findElement(By.cssSelector(css));
    field.clear();
    field.sendKeys(text);
  }

  private String text(String css) {
    return browser.findElement(By.cssSelector(css)).getText();
  }

  private void scrollTo(String css) {
    browser.executeScript(
        "arguments[0].scrollIntoView({block: 'start'});", browser.findElement(By.cssSelector(css)));
  }

  /**
   * The strip's segments once there are {@code count} of them, each with its state and its start
   * and width as fractions of the strip, measured from the laid-out page.
   */
  @SuppressWarnings("unchecked")
  private List<Map<String, Object>> waitForSegments(int count) {
    String measure =
        "const strip = document.getElementById('map-strip').getBoundingClientRect();"
            + "return [...document.querySelectorAll('#map-strip .segment')].map(s => {"
            + "  const r = s.getBoundingClientRect();"
            + "  return {state: s.dataset.state, start: (r.left - strip.left) / strip.width,"
            + "          fraction: r.width / strip.width};"
            + "});";
    return waitForPage.until(
        page -> {
          List<Map<String, Object>> segments =
              (List<Map<String, Object>>) ((JavascriptExecutor) page).executeScript(measure);
          return segments.size() == count ? segments : null;
        });
  }

  private static double number(Map<String, Object> measured, String key) {
    return ((Number) measured.get(key)).doubleValue();
  }

  private double widthRatio(WebElement part, WebElement whole) {
    Object ratio =
        browser.executeScript(
            "return arguments[0].getBoundingClientRect().width"
                + " / arguments[1].getBoundingClientRect().width;",
            part,
            whole);
    return ((Number) ratio).doubleValue();
  }

  private static void screenshot(String name) {
    try {
      Files.write(SCREENSHOTS.resolve(name + ".png"), browser.getScreenshotAs(OutputType.BYTES));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
