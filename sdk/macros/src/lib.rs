//! Compile-time checked literals. Use them through `atlex` (`atlex::did!`, …).
