if hs.status == "Healthy" and obj.status ~= nil and obj.status.gatewayClassName ~= nil and obj.status.gatewayClassName ~= "" then
  local mtls = obj.status.backendMTLS or "Unknown"
  hs.message = "Class " .. obj.status.gatewayClassName .. ", backend mTLS " .. mtls .. ". " .. hs.message
end
return hs
