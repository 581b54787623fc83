package dev.fvdisk;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/** Boots the fvdisk service; all behaviour lives in the packages below this one. */
@SpringBootApplication
public class FvdiskApplication {

  public static void main(String[] args) {
    SpringApplication.run(FvdiskApplication.class, args);
  }
}
