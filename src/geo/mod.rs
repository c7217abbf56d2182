//! IP geolocation over MaxMind-format databases.
