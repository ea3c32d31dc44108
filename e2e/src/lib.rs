//! End-to-end tests live in `tests/`: they open the built dashboard (`dist/`, from `trunk build
//! --release`) in headless Chromium through chromedriver and check what a person would see. Run them
//! with `./dev test`, which builds the frontend and installs Chromium and chromedriver first.
